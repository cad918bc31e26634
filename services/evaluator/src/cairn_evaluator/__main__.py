from cairn_evaluator.app import main

main()
