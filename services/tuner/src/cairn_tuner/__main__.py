from cairn_tuner.app import main

main()
