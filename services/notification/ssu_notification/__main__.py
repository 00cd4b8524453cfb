from ssu_notification.main import main

main()
