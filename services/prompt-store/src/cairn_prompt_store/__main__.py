from cairn_prompt_store.app import main

main()
