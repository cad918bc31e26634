from cairn_gateway.app import main

main()
