"""The demo's contracts carry bank details that billing accepts (`make run` seeds them)."""

from ssu_billing import domain
from ssu_cli.demo import demo_bank_details


def test_the_demo_bank_details_pass_billing_checks() -> None:
    for bin_ in ("940140000385", "200340476027", "000000000001"):
        details = demo_bank_details(bin_)
        assert domain.normal_iik(details["iik"]) == details["iik"]
        assert domain.normal_bik(details["bik"]) == "HSBKKZKX"
        assert (domain.check_kbk(details["kbk"]), domain.check_knp(details["knp"])) == (
            "123107",
            "859",
        )
    assert demo_bank_details("940140000385")["iik"] == "KZ326010940140000385"
