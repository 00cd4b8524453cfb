from ssu_licensing.main import main

main()
