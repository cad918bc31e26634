from cairn_feedback.app import main

main()
