from cairn_retriever.app import main

main()
