from cairn_inference.app import main

main()
