"""The operator console in a real browser (headless Debian Chromium driven by Selenium) against the
running services: audit, prompt store, retriever, safety, inference, the evaluator (registry) and the
gateway serving the console.

One journey, as an operator and then a platform admin would make it: log in with a key, find a
request held for review by its id, open its trail, approve the held question (the model then answers
it), and promote a model version to production through the confirmation page. Each page is
screenshotted; with `CAIRN_CONSOLE_SCREENSHOTS=<folder>` (`make console-screenshots`) the screenshots
are written there (docs/console/), else under the test's temporary folder.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from cairn_bus.kafka import ensure_topics
from cairn_localstack.process import ProcessManager
from cairn_testing.browser import chrome, fill, screenshot, wait_for
from cairn_testing.processes import ServiceProcesses, free_port, prepare_groups, run_cairn, service_env

from .harness import REPO, create_api_key, policy_folder

pytestmark = pytest.mark.integration

SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference", "evaluator", "gateway"]
TENANT = "e2e-console"
MODEL = "console-qa"
QUESTION = "What does the pass statement do?"
TENANTS = {TENANT: {"input": {"toxicity": {"thresholds": [{"min_score": 0.0, "action": "review"}]}}}}
"""TENANT's policy holds every question for review."""


@dataclass
class Stack:
    console: str
    gateway: str
    keys: dict[str, str]
    """`operator` (bound to TENANT) and `admin` (platform-wide)."""
    shots: Path


@pytest.fixture(scope="module")
async def stack(
    local_stack: dict[str, str],
    e2e_database: str,
    knowledge_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"
    env["CAIRN_POLICY_DIR"] = str(policy_folder(tmp_path_factory.mktemp("console-policies"), TENANTS))
    bootstrap = env["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    run_cairn(env, "prompts", "push", str(REPO / "infra/prompts/qa.yaml"), "--label", "production", cwd=REPO)
    run_cairn(env, "docs", "ingest", str(knowledge_dir), cwd=REPO)
    run_cairn(env, "inference", "prepare", cwd=REPO)
    keys = {
        role: create_api_key(env, tenant, role=role, name=f"e2e-console-{role}")
        for role, tenant in (("operator", TENANT), ("admin", "*"))
    }
    ports = {name: free_port() for name in ("gateway", "audit", "safety", "prompt-store", "evaluator")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    extra = {name: {"CAIRN_HTTP_PORT": str(port)} for name, port in ports.items()}
    extra["gateway"].update(
        {
            "CAIRN_GATEWAY_AUDIT_URL": url["audit"],
            "CAIRN_GATEWAY_SAFETY_URL": url["safety"],
            "CAIRN_GATEWAY_PROMPT_STORE_URL": url["prompt-store"],
            "CAIRN_GATEWAY_REGISTRY_URL": url["evaluator"],
        }
    )
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    services = ServiceProcesses(ProcessManager(tmp_path_factory.mktemp("e2e-console")), env, groups, cwd=REPO)
    shots = Path(os.environ.get("CAIRN_CONSOLE_SCREENSHOTS") or tmp_path_factory.mktemp("console-shots"))
    with services.running(SERVICES, extra_env=extra):
        run_cairn(env, "tune", "register-base", MODEL, cwd=REPO)  # version 1, stage dev
        yield Stack(f"{url['gateway']}/console", url["gateway"], keys, shots)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chrome(window=(1280, 1000)) as driver:
        yield driver


@pytest.fixture(scope="module")
async def held_request(stack: Stack) -> str:
    """A question asked through the gateway and held for review at input (answered 409)."""
    async with httpx.AsyncClient(timeout=300) as client:
        got = await client.post(
            f"{stack.gateway}/v1/chat/completions",
            headers={"Authorization": f"Bearer {stack.keys['operator']}"},
            json={"model": "qa", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12},
        )
    assert got.status_code == 409, got.text
    assert got.json()["error"]["code"] == "held_for_review"
    return got.headers["x-cairn-request-id"]


def shoot(stack: Stack, driver: WebDriver, name: str) -> None:
    path = screenshot(driver, stack.shots / f"{name}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def log_in(stack: Stack, driver: WebDriver, who: str) -> None:
    driver.get(f"{stack.console}/login")
    fill(driver, "#api_key", stack.keys[who])
    driver.find_element(By.ID, "login").click()
    wait_for(driver, "#who")


def eventually_on_page(driver: WebDriver, css: str, text: str, timeout: float = 240) -> None:
    """Reload until the element `css` says `text` (the services act asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if found and text in found[0].text:
            return
        assert time.monotonic() < deadline, (
            f"{css} never said {text!r}: {found[0].text if found else 'absent'}"
        )
        time.sleep(2)
        driver.refresh()


async def test_an_operator_logs_in_finds_a_held_request_and_opens_its_trail(
    stack: Stack, browser: WebDriver, held_request: str
) -> None:
    driver = browser
    driver.get(f"{stack.console}/requests")
    wait_for(driver, "#api_key")  # no session: the login page
    shoot(stack, driver, "login")
    log_in(stack, driver, "operator")
    assert TENANT in driver.find_element(By.ID, "who").text
    assert stack.keys["operator"] not in driver.page_source
    eventually_on_page(driver, "#requests", held_request, timeout=120)  # audit stored the answer
    shoot(stack, driver, "requests")
    fill(driver, "#request_id", held_request)
    driver.find_element(By.ID, "search").click()
    wait_for(driver, "#timeline")
    assert driver.find_element(By.ID, "trail-request-id").text == held_request
    assert "held" in driver.find_element(By.ID, "trail-status").text
    kinds = [
        e.get_attribute("data-type") for e in driver.find_elements(By.CSS_SELECTOR, "#timeline li.event")
    ]
    assert kinds[0] == "cairn.request.submitted.v1"
    assert "cairn.context.assembled.v1" in kinds
    assert "cairn.review.requested.v1" in kinds  # safety held the question instead of passing it on
    assert ".md" in driver.find_element(By.CSS_SELECTOR, "#timeline table.chunks").text  # provenance
    shoot(stack, driver, "trail")


async def test_the_operator_approves_the_held_question_and_the_model_answers_it(
    stack: Stack, browser: WebDriver, held_request: str
) -> None:
    driver = browser
    driver.find_element(By.ID, "nav-reviews").click()
    link = wait_for(driver, f'#reviews a.review-link[data-request="{held_request}"]')
    shoot(stack, driver, "reviews")
    link.click()
    wait_for(driver, "#approve")
    assert QUESTION in driver.find_element(By.ID, "review-text").text
    shoot(stack, driver, "review")
    driver.find_element(By.ID, "approve").click()
    assert "approved" in wait_for(driver, "#notice").text
    assert driver.find_element(By.ID, "review-state").text == "approved"
    driver.find_element(By.ID, "review-request").click()
    eventually_on_page(driver, "#trail-status", "completed")  # released to the model, answered
    assert "cairn.review.resolved.v1" in driver.page_source
    assert "cairn.completion.generated.v1" in driver.page_source
    shoot(stack, driver, "trail-answered")


async def test_a_platform_admin_promotes_a_model_version_through_the_confirmation(
    stack: Stack, browser: WebDriver
) -> None:
    driver = browser
    driver.find_element(By.ID, "logout").click()
    wait_for(driver, "#api_key")
    log_in(stack, driver, "admin")
    driver.get(f"{stack.console}/models/{MODEL}")
    eventually_on_page(driver, "main", "dev", timeout=120)  # the evaluator registered version 1
    shoot(stack, driver, "model")
    driver.find_element(By.ID, "promote-1-production").click()
    wait_for(driver, "#confirm")
    fill(driver, "#reason", "checked in the console e2e test")
    shoot(stack, driver, "promote-confirm")
    driver.find_element(By.ID, "confirm").click()
    assert "moved" in wait_for(driver, "#notice").text
    eventually_on_page(driver, "main", "production")
    for page in ("models", "prompts", "datasets", "alerts", "charts"):
        driver.get(f"{stack.console}/{page}")
        wait_for(driver, "main h1")
        assert "Unavailable" not in driver.find_element(By.CSS_SELECTOR, "main h1").text, driver.page_source
        shoot(stack, driver, page)
    driver.get(f"{stack.console}/prompts/qa")
    wait_for(driver, "main h1")
    shoot(stack, driver, "prompt")
