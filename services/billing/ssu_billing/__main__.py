from ssu_billing.main import main

main()
