from cairn_audit.app import main

main()
