"""A tiny chat model for fast tests and benchmarks: a byte-level BPE, a ChatML template, 2 Llama layers.

It answers nonsense, but it is a real `transformers` causal LM with a chat template, so
everything the CPU backend does (templating, left-padded batches, stop strings, token limits,
save and reload) runs on it in milliseconds instead of loading SmolLM2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["TINY_MODEL_NAME", "build_tiny_model"]

TINY_MODEL_NAME = "cairn-tiny-chat"
"""The name the tiny model is served under."""

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "What does yield do in Python? It turns a function into a generator.",
    "The quick brown fox jumps over the lazy dog.",
    "Kafka topics carry versioned CloudEvents between services.",
    "Answer the question using the context. Be brief and cite sources.",
    "system user assistant: hello, how can I help you today?",
    "Paris is the capital of France. Tokyo is the capital of Japan.",
    "0123456789 + - * / = ( ) [ ] { } , . ; : ! ? ' \" <> @ # $ % & _",
]


def build_tiny_model(path: str | Path, *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Train a tokenizer and initialise a 2-layer Llama chat model in `path`; returns `path`.

    Deterministic for a given `seed`: the same weights and vocabulary every time. Takes well
    under a second on one CPU thread.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    pad_id, eos_id, bos_id = (_token_id(bpe, token) for token in SPECIAL_TOKENS)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # wider than the default 0.02, so greedy choices are not near-ties that float rounding flips
        initializer_range=0.5,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    generation: Any = GenerationConfig(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)  # type: ignore[no-untyped-call]
    model.generation_config = generation
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _token_id(tokenizer: Any, token: str) -> int:
    found = tokenizer.token_to_id(token)
    if found is None:
        raise ValueError(f"{token} is not in the vocabulary")
    return int(found)
