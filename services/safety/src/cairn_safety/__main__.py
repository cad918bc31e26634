from cairn_safety.app import main

main()
