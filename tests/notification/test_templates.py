"""Every (event, audience) template renders in both languages; some texts checked exactly."""

import pytest
from ssu_notification import domain
from ssu_notification.templates import render, render_bilingual
from template_fixtures import EVENTS, context_for

CASES = [
    (domain.template_key(event_type), audience)
    for event_type, audiences in domain.AUDIENCES.items()
    for audience in audiences
]


def test_every_notified_event_has_a_fixture() -> None:
    assert {key for key, _ in CASES} == set(EVENTS)
    assert len(CASES) == 20


@pytest.mark.parametrize("lang", ["kk", "ru"])
@pytest.mark.parametrize(("event_key", "audience"), CASES)
def test_template_renders(event_key: str, audience: str, lang: str) -> None:
    text = render(event_key, audience, lang, context_for(event_key, audience))
    assert text.subject and "\n" not in text.subject
    assert text.body.strip()
    for rendered in (text.subject, text.body, text.sms or ""):
        assert "None" not in rendered
        assert "{{" not in rendered and "{%" not in rendered
        assert "\n\n\n" not in rendered
    if audience == "department":
        assert text.sms is None
    else:
        assert text.sms and "\n" not in text.sms


def test_suspension_to_the_provider_in_russian() -> None:
    text = render(
        "licensing.license.suspended",
        "provider",
        "ru",
        context_for("licensing.license.suspended", "provider"),
    )
    assert text.subject == "Действие лицензии № KZ-2026-000123 приостановлено"
    assert text.sms == (
        "ССУ: действие лицензии № KZ-2026-000123 приостановлено с 01.03.2026 до 01.04.2026."
        " Причина: нарушение санитарных норм"
    )
    assert text.body == (
        "Здравствуйте, ТОО «Умит»!\n"
        "\n"
        "Действие лицензии № KZ-2026-000123 на оказание специальных социальных услуг"
        " приостановлено с 01.03.2026 до 01.04.2026.\n"
        "Причина: нарушение санитарных норм\n"
        "\n"
        "На время приостановления новые получатели не зачисляются, а вашим получателям услуг"
        " предлагаются другие поставщики.\n"
        "\n"
        "Регион: Восточно-Казахстанская область\n"
        "Виды услуг:\n"
        "- стационарная форма: лица пожилого возраста\n"
        "Места оказания услуг:\n"
        "- г. Усть-Каменогорск, ул. Абая, 10 (мест: 40)\n"
        "\n"
        "Это автоматическое сообщение системы специальных социальных услуг; отвечать на него"
        " не нужно.\n"
    )


def test_suspension_to_the_provider_in_kazakh() -> None:
    text = render(
        "licensing.license.suspended",
        "provider",
        "kk",
        context_for("licensing.license.suspended", "provider"),
    )
    assert text.subject == "№ KZ-2026-000123 лицензияның қолданылуы тоқтатыла тұрды"
    assert text.sms == (
        "АӘҚ: № KZ-2026-000123 лицензияның қолданылуы 01.03.2026 бастап 01.04.2026 дейін"
        " тоқтатыла тұрды. Себебі: нарушение санитарных норм"
    )
    assert text.body == (
        "Құрметті ТОО «Умит»!\n"
        "\n"
        "Арнаулы әлеуметтік қызметтер көрсетуге арналған № KZ-2026-000123 лицензияның"
        " қолданылуы 01.03.2026 бастап 01.04.2026 дейін тоқтатыла тұрды.\n"
        "Себебі: нарушение санитарных норм\n"
        "\n"
        "Тоқтатыла тұру кезеңінде жаңа алушылар қабылданбайды, ал сіздің қызмет алушыларыңызға"
        " басқа жеткізушілер ұсынылады.\n"
        "\n"
        "Өңір: Шығыс Қазақстан облысы\n"
        "Қызмет түрлері:\n"
        "- стационарлық нысан: егде жастағы адамдар\n"
        "Қызмет көрсету орындары:\n"
        "- г. Усть-Каменогорск, ул. Абая, 10 (орын саны: 40)\n"
        "\n"
        "Бұл арнаулы әлеуметтік қызметтер жүйесінің автоматты хабарламасы; оған жауап берудің"
        " қажеті жоқ.\n"
    )


def test_invoice_money_and_month_in_both_languages() -> None:
    ctx = context_for("billing.invoice.issued", "provider")
    ru = render("billing.invoice.issued", "provider", "ru", ctx)
    kk = render("billing.invoice.issued", "provider", "kk", ctx)
    assert ru.subject == "Счёт № INV-2026-01-0001 за январь 2026"
    assert (
        ru.sms == "ССУ: выставлен счёт № INV-2026-01-0001 за январь 2026 на сумму 1 234 567,89 ₸."
    )
    assert "Сумма счёта: 1 234 567,89 ₸\n" in ru.body
    assert "Сверх бюджета договора (не оплачивается): 1 500,50 ₸\n" in ru.body
    assert "Дата выставления: 02.02.2026\n" in ru.body  # 19:30 UTC is the next day in Almaty
    assert kk.subject == "2026 жылғы қаңтар үшін № INV-2026-01-0001 шот"
    assert "Шот сомасы: 1 234 567,89 ₸\n" in kk.body
    assert "«Шығыс Қазақстан облысы» өңірінің төлем тізіліміне" in kk.body


def test_department_gets_kazakh_and_russian_in_one_message() -> None:
    text = render_bilingual(
        "billing.budget.exhausted",
        "department",
        context_for("billing.budget.exhausted", "department"),
    )
    assert text.subject == (
        "№ C-2026-17 шарттың бюджеті таусылды / Исчерпан бюджет договора № C-2026-17"
    )
    kk, ru = text.body.split("\n----------\n\n")
    assert kk.startswith("Шығыс Қазақстан облысының жұмыспен қамтуды үйлестіру")
    assert "Бюджет: 10 000 000,00 ₸\n" in kk
    assert ru == (
        "Управление координации занятости и социальных программ"
        " (Восточно-Казахстанская область)\n"
        "\n"
        "Бюджет договора № C-2026-17 на 2026 год с поставщиком «ТОО «Умит»» (БИН 940140000385)"
        " исчерпан при расчёте за январь 2026.\n"
        "\n"
        "Бюджет: 10 000 000,00 ₸\n"
        "Выставлено к оплате: 9 998 499,50 ₸\n"
        "Сверх бюджета (не оплачено): 1 500,50 ₸\n"
        "\n"
        "Строки сверх бюджета сохранены и не оплачиваются, пока бюджет договора не будет"
        " увеличен.\n"
    )


def test_rejection_lists_unmet_requirements_in_the_providers_language() -> None:
    ctx = context_for("licensing.application.rejected", "provider")
    ru = render("licensing.application.rejected", "provider", "ru", ctx)
    kk = render("licensing.application.rejected", "provider", "kk", ctx)
    assert (
        "Невыполненные требования:\n"
        "- Медицинские сёстры: требуется 1.0 FTE на 10 мест, фактически 0.5 FTE на 10 мест\n"
    ) in ru.body
    assert "- Мейірбикелер: талап етіледі 1.0 FTE на 10 мест" in kk.body


def test_disruption_offers_alternatives() -> None:
    ctx = context_for("registry.enrollment.disrupted", "guardian")
    kk = render("registry.enrollment.disrupted", "guardian", "kk", ctx)
    assert kk.sms == (
        "АӘҚ: Болат Сейтов, «ТОО «Умит»» жеткізушісінің қамқорыңыздағы адамға (Айгерим Сейтова)"
        " қызмет көрсетуі 01.03.2026 бастап үзілді. Бос орындар: ОФ «Шапагат»,"
        " г. Усть-Каменогорск, пр. Назарбаева, 3, тел. +77232000000."
    )
    assert (
        "- ОФ «Шапагат», г. Усть-Каменогорск, пр. Назарбаева, 3, бос орын саны: 7,"
        " тел. +77232000000\n"
    ) in kk.body


def test_unplacement_tells_the_recipient_they_come_first_with_alternatives() -> None:
    ctx = context_for("registry.enrollment.unplaced", "recipient")
    kk = render("registry.enrollment.unplaced", "recipient", "kk", ctx)
    ru = render("registry.enrollment.unplaced", "recipient", "ru", ctx)
    assert ru.subject == "Лицензия поставщика отозвана: вам ищут новое место"
    assert ru.sms == (
        "ССУ: Айгерим Сейтова, лицензия поставщика «ТОО «Умит»» отозвана с 01.05.2026,"
        " оказание услуг у него прекращено. Вас устроят к другому поставщику в первую очередь."
        " Свободные места: ОФ «Шапагат», г. Усть-Каменогорск, пр. Назарбаева, 3,"
        " тел. +77232000000."
    )
    assert kk.subject == "Жеткізушінің лицензиясы қайтарып алынды: сізге жаңа орын іздестіріледі"
    assert kk.sms == (
        "АӘҚ: Айгерим Сейтова, «ТОО «Умит»» жеткізушісінің лицензиясы 01.05.2026 бастап"
        " қайтарып алынды, онда қызмет көрсету тоқтатылды. Сіз басқа жеткізушіге бірінші"
        " кезекте орналастырыласыз. Бос орындар: ОФ «Шапагат», г. Усть-Каменогорск,"
        " пр. Назарбаева, 3, тел. +77232000000."
    )
    assert "Причина: license revoked: повторное нарушение\n" in ru.body
    assert (
        "- ОФ «Шапагат», г. Усть-Каменогорск, пр. Назарбаева, 3, свободных мест: 7,"
        " тел. +77232000000\n" in ru.body
    )
    assert "- ОФ «Шапагат», г. Усть-Каменогорск, пр. Назарбаева, 3, бос орын саны: 7" in kk.body


def test_resumption_tells_the_guardian_in_both_languages() -> None:
    ctx = context_for("registry.enrollment.resumed", "guardian")
    kk = render("registry.enrollment.resumed", "guardian", "kk", ctx)
    ru = render("registry.enrollment.resumed", "guardian", "ru", ctx)
    assert ru.subject == "Оказание услуг вашему подопечному возобновлено"
    assert ru.sms == (
        "ССУ: Болат Сейтов, оказание услуг вашему подопечному (Айгерим Сейтова) у поставщика"
        " «ТОО «Умит»» возобновлено с 01.04.2026."
    )
    assert kk.sms == (
        "АӘҚ: Болат Сейтов, «ТОО «Умит»» жеткізушісінің қамқорыңыздағы адамға"
        " (Айгерим Сейтова) қызмет көрсетуі 01.04.2026 бастап қайта басталды."
    )
    assert ru.body == (
        "Здравствуйте, Болат Сейтов!\n\n"
        "С 01.04.2026 действие лицензии поставщика возобновлено, оказание специальных"
        " социальных услуг вашему подопечному продолжается на прежнем месте.\n\n"
        "Получатель услуг: Айгерим Сейтова\n"
        "Поставщик: ТОО «Умит»\n"
        "Форма: стационарная форма\n"
        "Категория: лица пожилого возраста\n"
        "Лицензия поставщика: № KZ-2026-000123\n\n"
        "Это автоматическое сообщение системы специальных социальных услуг;"
        " отвечать на него не нужно.\n"
    )
