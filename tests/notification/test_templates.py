"""Every (event, audience) template renders in both languages; some texts checked exactly."""

import pytest
from ssu_contracts import OfferLapsedV1
from ssu_notification import domain
from ssu_notification.templates import render, render_bilingual
from template_fixtures import EVENTS, OFFER, SHELTER_OFFER, context_for

CASES = [
    (domain.template_key(event_type), audience)
    for event_type, audiences in domain.AUDIENCES.items()
    for audience in audiences
]


def test_every_notified_event_has_a_fixture() -> None:
    assert {key for key, _ in CASES} == set(EVENTS)
    assert len(CASES) == 34


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
        # One line, at most five concatenated UCS-2 segments (5 × 67 characters).
        assert text.sms and "\n" not in text.sms
        assert len(text.sms) <= 335


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


def test_joining_the_waiting_list_gives_the_place_in_line() -> None:
    ctx = context_for("registry.waiting.joined", "recipient")
    ru = render("registry.waiting.joined", "recipient", "ru", ctx)
    kk = render("registry.waiting.joined", "recipient", "kk", ctx)
    assert (
        ru.subject == "Вы поставлены в очередь на место для получения специальных социальных услуг"
    )
    assert ru.sms == (
        "ССУ: Айгерим Сейтова, вы в очереди на место (стационарная форма,"
        " Восточно-Казахстанская область). Ваше место в очереди: 2 из 5."
    )
    assert ru.body.startswith(
        "Здравствуйте, Айгерим Сейтова!\n\n"
        "Вы поставлены в очередь на место для получения специальных социальных услуг:"
        " стационарная форма, Восточно-Казахстанская область.\n"
        "Ваше место в очереди: 2 из 5.\n"
        "Вы лишились места из-за приостановления или отзыва лицензии поставщика.\n"
        "Причина: license revoked: повторное нарушение\n\n"
        "Форма: стационарная форма\n"
        "Категория: лица пожилого возраста\n"
        "Регион: Восточно-Казахстанская область\n"
        "В очереди с: 02.05.2026\n"
    )
    assert kk.sms == (
        "АӘҚ: Айгерим Сейтова, сіз орын кезегіне қойылдыңыз (стационарлық нысан,"
        " Шығыс Қазақстан облысы). Кезектегі орныңыз: 2, кезекте барлығы 5 адам."
    )
    assert "Себебі: license revoked: повторное нарушение\n" in kk.body
    guardian = render(
        "registry.waiting.joined",
        "guardian",
        "ru",
        context_for("registry.waiting.joined", "guardian"),
    )
    assert guardian.sms == (
        "ССУ: Болат Сейтов, ваш подопечный (Айгерим Сейтова) в очереди на место"
        " (стационарная форма, Восточно-Казахстанская область). Его место в очереди: 2 из 5."
    )


def test_an_offer_names_the_place_the_deadline_and_how_to_answer() -> None:
    ctx = context_for("registry.offer.made", "recipient")
    ru = render("registry.offer.made", "recipient", "ru", ctx)
    kk = render("registry.offer.made", "recipient", "kk", ctx)
    assert ru.subject == "Вам предложено место: ответьте до 11.05.2026"
    assert ru.sms == (
        "ССУ: Айгерим Сейтова, вам предложено место у поставщика «ОФ «Шапагат»»,"
        " г. Усть-Каменогорск, пр. Назарбаева, 3. Место за вами до 11.05.2026 включительно."
        " Чтобы принять или отказаться, сообщите в отдел соцзащиты: +7 700 000 13 13."
    )
    assert (
        "Поставщик: ОФ «Шапагат»\n"
        "Адрес: г. Усть-Каменогорск, пр. Назарбаева, 3\n"
        "Форма: стационарная форма\n"
    ) in ru.body
    assert (
        "Место сохраняется до 11.05.2026 включительно. Чтобы принять предложение или"
        " отказаться от него, сообщите об этом в отдел социальной защиты региона.\n"
        "Контакты: Управление координации занятости и социальных программ"
        " (Восточно-Казахстанская область), тел. +7 700 000 13 13,"
        " social.east-kazakhstan@example.gov.kz\n"
    ) in ru.body
    assert "а вы останетесь в очереди." in ru.body
    assert kk.subject == "Сізге орын ұсынылды: 11.05.2026 дейін жауап беріңіз"
    assert kk.sms == (
        "АӘҚ: Айгерим Сейтова, сізге «ОФ «Шапагат»» жеткізушісінде орын ұсынылды,"
        " г. Усть-Каменогорск, пр. Назарбаева, 3. Орын сіз үшін 11.05.2026 қоса алғанда"
        " сақталады. Қабылдау немесе бас тарту үшін әлеуметтік қорғау бөліміне хабарлаңыз:"
        " +7 700 000 13 13."
    )
    assert "Мекенжайы: г. Усть-Каменогорск, пр. Назарбаева, 3\n" in kk.body
    assert "Байланыс: Шығыс Қазақстан облысының жұмыспен қамтуды үйлестіру" in kk.body


def test_an_offer_tells_the_department_whom_to_call() -> None:
    text = render_bilingual(
        "registry.offer.made", "department", context_for("registry.offer.made", "department")
    )
    assert text.subject == (
        "Қызмет алушыға 11.05.2026 дейін орын ұсынылды (ОФ «Шапагат»)"
        " / Получателю предложено место до 11.05.2026 (ОФ «Шапагат»)"
    )
    kk, ru = text.body.split("\n----------\n\n")
    assert ru == (
        "Управление координации занятости и социальных программ"
        " (Восточно-Казахстанская область)\n\n"
        "04.05.2026 получателю специальных социальных услуг предложено место; оно сохраняется"
        " за ним до 11.05.2026 включительно. Ответ (согласие или отказ) принимает отдел.\n\n"
        "Получатель: Айгерим Сейтова, ИИН 061211600012\n"
        "Поставщик: ОФ «Шапагат»\n"
        "Адрес: г. Усть-Каменогорск, пр. Назарбаева, 3\n"
        "Идентификатор места: a1\n"
        "Форма: стационарная форма\n"
        "Категория: лица пожилого возраста\n"
        "Регион: Восточно-Казахстанская область\n"
        "Лицензия поставщика: № KZ-2026-000456\n"
        "Сообщено опекуну: Болат Сейтов, тел. +77019998877, bolat@example.kz\n\n"
        "Если ответа не будет, позвоните по этим контактам до 11.05.2026: после этой даты"
        " место перейдёт следующему в очереди.\n"
    )
    assert "Хабарланды (қамқоршы): Болат Сейтов, тел. +77019998877, bolat@example.kz\n" in kk


def test_a_shelters_address_reaches_only_the_woman_offered_the_place() -> None:
    address = "г. Усть-Каменогорск, ул. Тихая, 7"
    ctx = context_for("registry.offer.made", "recipient", SHELTER_OFFER)
    for lang in ("kk", "ru"):
        own = render("registry.offer.made", "recipient", lang, ctx)
        assert address in own.body  # her own mailbox: she needs to find the place
        assert own.sms is not None and address not in own.sms  # a phone's screen is read by others
    ru = render("registry.offer.made", "recipient", "ru", ctx)
    assert "Адрес приюта конфиденциален: не сообщайте его посторонним.\n" in ru.body
    assert ru.sms == (
        "ССУ: Айгерим Сейтова, вам предложено место у поставщика «ОФ «Шапагат»». Место за"
        " вами до 06.05.2026 включительно. Чтобы принять или отказаться, сообщите в отдел"
        " соцзащиты: +7 700 000 13 13."
    )
    department = render_bilingual(
        "registry.offer.made",
        "department",
        context_for("registry.offer.made", "department", SHELTER_OFFER),
    )
    assert address not in department.subject and address not in department.body
    assert "Тихая" not in department.body
    assert "Адрес: не указывается (приют)\nИдентификатор места: a1\n" in department.body
    assert "Мекенжайы: көрсетілмейді (баспана)\n" in department.body
    # Not a shelter: the department sees where the place is.
    ordinary = render_bilingual(
        "registry.offer.made", "department", context_for("registry.offer.made", "department")
    )
    assert "Адрес: г. Усть-Каменогорск, пр. Назарбаева, 3\n" in ordinary.body


def test_an_accepted_offer_gives_the_provider_and_start_date() -> None:
    ctx = context_for("registry.offer.accepted", "recipient")
    ru = render("registry.offer.accepted", "recipient", "ru", ctx)
    kk = render("registry.offer.accepted", "recipient", "kk", ctx)
    assert ru.subject == "Вы приняли предложенное место: услуги с 06.05.2026"
    assert ru.sms == (
        "ССУ: Айгерим Сейтова, вы приняли место у поставщика «ОФ «Шапагат»»;"
        " услуги оказываются вам с 06.05.2026."
    )
    assert kk.sms == (
        "АӘҚ: Айгерим Сейтова, сіз «ОФ «Шапагат»» жеткізушісіндегі орынды қабылдадыңыз;"
        " 06.05.2026 бастап сізге арнаулы әлеуметтік қызметтер көрсетіледі."
    )
    assert "Поставщик: ОФ «Шапагат»\nФорма: стационарная форма\n" in ru.body
    department = render_bilingual(
        "registry.offer.accepted",
        "department",
        context_for("registry.offer.accepted", "department"),
    )
    assert department.subject == (
        "Ұсынылған орын қабылданды: қызмет алушы 06.05.2026 бастап қабылданды (ОФ «Шапагат»)"
        " / Предложенное место принято: получатель зачислен с 06.05.2026 (ОФ «Шапагат»)"
    )
    assert "зачислен с 06.05.2026 и исключён из очереди.\n" in department.body


LAPSED = {
    "declined": (
        "Предложение места отклонено: вы остаётесь в очереди",
        "От предложенного места отказались.\n",
        "Орын ұсынысы қабылданбады: сіз кезекте қаласыз",
        "Ұсынылған орыннан бас тартылды.\n",
    ),
    "expired": (
        "Предложение места не принято в срок: вы остаётесь в очереди",
        "Ответа на предложение в срок не было, и место больше не сохраняется.\n",
        "Орын ұсынысы мерзімінде қабылданбады: сіз кезекте қаласыз",
        "Ұсынысқа белгіленген мерзімде жауап берілмеді, орын енді сақталмайды.\n",
    ),
    "withdrawn": (
        "Предложение места отозвано: вы остаётесь в очереди",
        "Предложение отозвано: место больше недоступно (лицензия поставщика приостановлена"
        " или отозвана либо место больше не предлагается).\n",
        "Орын ұсынысы кері қайтарылды: сіз кезекте қаласыз",
        "Ұсыныс кері қайтарылды: орын енді қолжетімсіз",
    ),
}


@pytest.mark.parametrize("reason", sorted(LAPSED))
def test_a_lapsed_offer_says_why_and_that_the_recipient_stays_in_line(reason: str) -> None:
    event = OfferLapsedV1(
        **OFFER, reason=reason, lapsed_on=EVENTS["registry.offer.lapsed"].lapsed_on
    )
    ru_subject, ru_why, kk_subject, kk_why = LAPSED[reason]
    ctx = context_for("registry.offer.lapsed", "recipient", event)
    ru = render("registry.offer.lapsed", "recipient", "ru", ctx)
    kk = render("registry.offer.lapsed", "recipient", "kk", ctx)
    assert ru.subject == ru_subject
    assert ru.body.startswith(
        f"Здравствуйте, Айгерим Сейтова!\n\n{ru_why}Дата: 12.05.2026\n\n"
        "Вы остаётесь в очереди; когда освободится подходящее место, вам его предложат.\n"
    )
    assert ru.sms is not None and ru.sms.endswith(" Вы остаётесь в очереди.")
    assert kk.subject == kk_subject
    assert kk_why in kk.body
    assert "Сіз кезекте қаласыз; лайықты орын босағанда, ол сізге ұсынылады.\n" in kk.body
    department = render_bilingual(
        "registry.offer.lapsed",
        "department",
        context_for("registry.offer.lapsed", "department", event),
    )
    passes_on = "Получатель остаётся в очереди. Место предлагается следующему в очереди.\n"
    assert (passes_on in department.body) == (reason != "withdrawn")
    assert "Получатель остаётся в очереди." in department.body
