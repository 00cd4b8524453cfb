from ssu_portal.main import main

main()
