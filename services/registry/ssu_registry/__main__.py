from ssu_registry.main import main

main()
