"""Validators behind the self-nomination chat flow: names, resident IDs, phones, free text."""

from __future__ import annotations

from datetime import date

import pytest

from storage.rules.identity import (
    IdInfo,
    RuleError,
    age_on,
    check_digit,
    clean_text,
    cross_check,
    make_id_number,
    mask_id,
    mask_phone,
    normalize_name,
    normalize_phone,
    parse_id_number,
)

TODAY = date(2026, 11, 25)
YINJIANG = "520221"  # a Guizhou county code, like the deployment's own county
DONGCHENG = "110101"  # Beijing, Dongcheng

# Verified by hand, weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2:
#   11010519491231002 → Σ = 167, 167 mod 11 = 2 → "X"
#   44052418800101001 → Σ = 195, 195 mod 11 = 8 → "4"
KNOWN_VALID = ("11010519491231002X", "440524188001010014")


def _with_check(first17: str) -> str:
    return first17 + check_digit(first17)


def _code(exc: pytest.ExceptionInfo[RuleError]) -> str:
    return exc.value.code


# ---------------------------------------------------------------------------------------------
# RuleError


def test_rule_error_carries_code_and_params() -> None:
    params = {"min": 2, "max": 20}
    error = RuleError("name.length", params)
    params["min"] = 99  # the error keeps its own copy
    assert isinstance(error, ValueError)
    assert error.code == "name.length"
    assert error.params == {"min": 2, "max": 20}
    assert str(error) == "name.length"


def test_rule_error_params_default_to_empty() -> None:
    assert RuleError("id.format").params == {}


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("张三", "张三"),
        ("欧阳娜娜", "欧阳娜娜"),
        ("阿依古丽·买买提", "阿依古丽·买买提"),
        ("买买提明·艾力·库尔班", "买买提明·艾力·库尔班"),
        ("Zhang San", "Zhang San"),
        ("Li", "Li"),
        ("  张三\u3000\u3000", "张三"),
        ("\u3000欧阳娜娜 ", "欧阳娜娜"),
        ("张 三", "张三"),  # Chinese names have no spaces; one typed by mistake goes
        ("Zhang   San", "Zhang San"),
        ("Zhang\u00a0San", "Zhang San"),
        ("Ｚｈａｎｇ　Ｓａｎ", "Zhang San"),  # full-width letters and space from a Chinese IME
        ("Lu\u0308 Bu", "Lü Bu"),  # combining diaeresis composed by NFC
        ("阿依古丽•买买提", "阿依古丽·买买提"),  # U+2022 bullet
        ("阿依古丽・买买提", "阿依古丽·买买提"),  # U+30FB katakana middle dot
        ("阿依古丽．买买提", "阿依古丽·买买提"),  # U+FF0E full-width full stop
        ("阿依古丽.买买提", "阿依古丽·买买提"),
        ("阿依古丽 · 买买提", "阿依古丽·买买提"),
        ("阿依古丽\u0387买买提", "阿依古丽·买买提"),  # Greek ano teleia, NFC → U+00B7
        ("张㐀", "张㐀"),  # CJK Extension A
        ("王𠀀", "王𠀀"),  # CJK Extension B
        ("张" * 20, "张" * 20),
        ("阿依古丽·买买提·艾力·库尔班·阿不都", "阿依古丽·买买提·艾力·库尔班·阿不都"),
    ],
)
def test_normalize_name_accepts(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("张", "name.length"),
        ("", "name.length"),
        ("   ", "name.length"),
        ("\u3000", "name.length"),
        ("张" * 21, "name.length"),
        ("Zhang Sanfeng Zhangwuji", "name.length"),
        ("张三123", "name.chars"),
        ("张\u200b三", "name.chars"),
        ("\u200b张三", "name.chars"),
        ("张三\ufeff", "name.chars"),
        ("张\u2060三", "name.chars"),
        ("张\u200d三", "name.chars"),
        ("张\t三", "name.chars"),
        ("张\n三", "name.chars"),
        ("张\x00三", "name.chars"),
        ("张三!", "name.chars"),
        ("Zhang_San", "name.chars"),
        ("Zhang-San", "name.chars"),
        ("张(三)", "name.chars"),
        ("김철수", "name.chars"),
        ("さくら", "name.chars"),
        ("•张三", "name.chars"),  # a look-alike at the edge is not taken for a dot
        ("张三.", "name.chars"),
        ("·张三", "name.dots"),
        ("张三·", "name.dots"),
        ("张··三", "name.dots"),
        ("·", "name.dots"),
    ],
)
def test_normalize_name_rejects(raw: str, code: str) -> None:
    with pytest.raises(RuleError) as exc:
        normalize_name(raw)
    assert _code(exc) == code


def test_name_length_error_names_the_bounds() -> None:
    with pytest.raises(RuleError) as exc:
        normalize_name("张")
    assert exc.value.params == {"min": 2, "max": 20}


# ---------------------------------------------------------------------------------------------
# Resident ID numbers


@pytest.mark.parametrize(
    ("first17", "digit"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
        ("52022119900315123", check_digit("52022119900315123")),
    ],
)
def test_check_digit(first17: str, digit: str) -> None:
    assert check_digit(first17) == digit


def test_check_digit_covers_all_remainders() -> None:
    # Every one of the 11 possible characters shows up, so the map has no dead entry.
    seen = {check_digit(f"5202211990031512{d}") for d in "0123456789"}
    seen |= {check_digit(f"520221199003151{d}0") for d in "0123456789"}
    assert seen == set("0123456789X")


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "110105194912310021", "1101051949123100X"]
)
def test_check_digit_needs_17_digits(bad: str) -> None:
    with pytest.raises(RuleError) as exc:
        check_digit(bad)
    assert _code(exc) == "id.format"


@pytest.mark.parametrize("number", KNOWN_VALID)
def test_known_valid_numbers_pass_the_checksum(number: str) -> None:
    assert check_digit(number[:17]) == number[17]


def test_known_valid_number_parses_when_age_is_not_limiting() -> None:
    info = parse_id_number("11010519491231002X", today=TODAY, max_age=120)
    assert info == IdInfo(
        number="11010519491231002X",
        birth_date=date(1949, 12, 31),
        gender="female",
        region="110105",
    )


def test_known_valid_number_of_a_76_year_old_fails_the_default_age_limit() -> None:
    with pytest.raises(RuleError) as exc:
        parse_id_number("11010519491231002X", today=TODAY)
    assert _code(exc) == "id.age"
    assert exc.value.params == {"min": 18, "max": 60}


@pytest.mark.parametrize(
    ("region", "birth", "seq", "male"),
    [
        (YINJIANG, date(1990, 3, 15), 61, True),
        (YINJIANG, date(1995, 7, 1), 0, False),
        (YINJIANG, date(2000, 2, 29), 499, True),
        (DONGCHENG, date(1985, 12, 31), 250, False),
        (DONGCHENG, date(1966, 11, 26), 7, True),
        ("440524", date(2008, 11, 25), 33, False),
    ],
)
def test_made_numbers_parse_back(region: str, birth: date, seq: int, male: bool) -> None:
    number = make_id_number(region, birth, seq, male)
    info = parse_id_number(number, today=TODAY)
    assert info == IdInfo(
        number=number, birth_date=birth, gender="male" if male else "female", region=region
    )
    assert number[14:17] == f"{2 * seq + int(male):03d}"


def test_make_id_number_example() -> None:
    # 52022119900315123 → weighted sum 232, 232 mod 11 = 1 → "0"
    assert make_id_number(YINJIANG, date(1990, 3, 15), 61, True) == "520221199003151230"


def test_make_id_number_covers_every_order_code_once_per_gender() -> None:
    birth = date(1990, 3, 15)
    codes = {
        make_id_number(YINJIANG, birth, s, m)[14:17] for s in range(500) for m in (True, False)
    }
    assert codes == {f"{n:03d}" for n in range(1000)}


@pytest.mark.parametrize(
    ("region", "birth", "seq"),
    [
        ("020221", date(1990, 1, 1), 1),
        ("52022", date(1990, 1, 1), 1),
        ("52022a", date(1990, 1, 1), 1),
        (YINJIANG, date(1990, 1, 1), -1),
        (YINJIANG, date(1990, 1, 1), 500),
        (YINJIANG, date(999, 1, 1), 1),
    ],
)
def test_make_id_number_refuses_bad_input(region: str, birth: date, seq: int) -> None:
    with pytest.raises(ValueError):
        make_id_number(region, birth, seq, True)


VALID = make_id_number(YINJIANG, date(1990, 3, 15), 61, True)  # 520221199003151230
VALID_X = "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (VALID, VALID),
        (f"  {VALID}  ", VALID),
        ("520221 19900315 1230", VALID),
        ("5202 2119 9003 1512 30", VALID),
        ("５２０２２１１９９００３１５１２３０", VALID),  # full-width digits
        ("５２０２２１\u3000１９９００３１５\u3000１２３０", VALID),
        ("11010519491231002x", VALID_X),  # lowercase x
        ("11010519491231002Ｘ", VALID_X),
        ("11010519491231002ｘ", VALID_X),
    ],
)
def test_parse_id_number_normalizes(raw: str, expected: str) -> None:
    assert parse_id_number(raw, today=TODAY, max_age=100).number == expected


def _flip_check(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "id.format"),
        (VALID[:17], "id.format"),  # 17 characters
        (VALID + "0", "id.format"),  # 19 characters
        ("52022119900315A234", "id.format"),  # a letter inside
        ("5202211990031512X4", "id.format"),  # X anywhere but last
        ("52022119900315123Y", "id.format"),
        ("52022119900315-1234", "id.format"),
        ("５２０２２１１９９００３１５１２３", "id.format"),  # 17 full-width digits
        ("٥٢٠٢٢١١٩٩٠٠٣١٥١٢٣٤", "id.format"),  # Arabic-Indic digits are not digits here
        (_with_check("02022119900315123"), "id.format"),  # leading zero
        (_flip_check(VALID), "id.checksum"),
        (VALID_X[:17] + "0", "id.checksum"),
        (VALID[:16] + "5" + VALID[17], "id.checksum"),  # gender digit changed, check digit not
        ("520221199003151320", "id.checksum"),  # two digits swapped
        (_with_check(f"{YINJIANG}19990230123"), "id.birthdate"),
        (_with_check(f"{YINJIANG}19990229123"), "id.birthdate"),  # 1999 is not a leap year
        (_with_check(f"{YINJIANG}19000229123"), "id.birthdate"),  # nor is 1900
        (_with_check(f"{YINJIANG}19901301123"), "id.birthdate"),
        (_with_check(f"{YINJIANG}19900100123"), "id.birthdate"),
        (_with_check(f"{YINJIANG}19900431123"), "id.birthdate"),
        (_with_check(f"{YINJIANG}00000101123"), "id.birthdate"),
        (make_id_number(YINJIANG, date(2027, 1, 1), 61, True), "id.future"),
        (make_id_number(YINJIANG, date(2026, 11, 26), 61, True), "id.future"),
        (make_id_number(YINJIANG, date(2008, 11, 26), 61, True), "id.age"),  # 17
        (make_id_number(YINJIANG, date(1965, 11, 25), 61, True), "id.age"),  # 61
        (make_id_number(YINJIANG, date(2026, 11, 25), 61, True), "id.age"),  # born today
        (make_id_number(DONGCHENG, date(1900, 1, 1), 61, True), "id.age"),
    ],
)
def test_parse_id_number_rejects(raw: str, code: str) -> None:
    with pytest.raises(RuleError) as exc:
        parse_id_number(raw, today=TODAY)
    assert _code(exc) == code


def test_id_age_error_names_the_bounds() -> None:
    number = make_id_number(YINJIANG, date(2010, 5, 1), 3, False)
    with pytest.raises(RuleError) as exc:
        parse_id_number(number, today=TODAY, min_age=18, max_age=45)
    assert exc.value.params == {"min": 18, "max": 45}


@pytest.mark.parametrize(
    ("birth", "today", "ok"),
    [
        (date(2008, 11, 26), date(2026, 11, 25), False),  # 17, a day short
        (date(2008, 11, 26), date(2026, 11, 26), True),  # 18 on the birthday
        (date(2008, 11, 25), date(2026, 11, 25), True),
        (date(1966, 11, 26), date(2026, 11, 25), True),  # 59 → still 59
        (date(1966, 11, 25), date(2026, 11, 25), True),  # 60, inclusive
        (date(1965, 11, 26), date(2026, 11, 25), True),  # 60, turns 61 tomorrow
        (date(1965, 11, 25), date(2026, 11, 25), False),  # 61
        # Born 29 Feb: in a common year the birthday counts as 1 March.
        (date(2008, 2, 29), date(2026, 2, 28), False),
        (date(2008, 2, 29), date(2026, 3, 1), True),
        (date(2010, 2, 28), date(2028, 2, 28), True),
        (date(2010, 3, 1), date(2028, 2, 29), False),
        (date(2010, 2, 28), date(2028, 2, 27), False),
    ],
)
def test_age_bounds_count_birthdays(birth: date, today: date, ok: bool) -> None:
    number = make_id_number(YINJIANG, birth, 10, True)
    if ok:
        assert parse_id_number(number, today=today).birth_date == birth
    else:
        with pytest.raises(RuleError) as exc:
            parse_id_number(number, today=today)
        assert _code(exc) == "id.age"


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [
        (date(2008, 11, 26), date(2026, 11, 25), 17),
        (date(2008, 11, 26), date(2026, 11, 26), 18),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 28), 19),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(1990, 12, 31), date(2026, 1, 1), 35),
        (date(1990, 1, 1), date(1990, 1, 1), 0),
    ],
)
def test_age_on(birth: date, today: date, age: int) -> None:
    assert age_on(birth, today) == age


def test_custom_age_range() -> None:
    number = make_id_number(DONGCHENG, date(1961, 6, 1), 5, False)
    assert parse_id_number(number, today=TODAY, max_age=70).gender == "female"
    with pytest.raises(RuleError):
        parse_id_number(number, today=TODAY, max_age=64)


def test_min_age_above_max_age_is_a_programming_error() -> None:
    with pytest.raises(ValueError) as exc:
        parse_id_number(VALID, today=TODAY, min_age=40, max_age=30)
    assert not isinstance(exc.value, RuleError)


@pytest.mark.parametrize(
    ("order", "gender"),
    [("001", "male"), ("002", "female"), ("123", "male"), ("998", "female"), ("999", "male")],
)
def test_gender_comes_from_the_17th_digit(order: str, gender: str) -> None:
    number = _with_check(f"{YINJIANG}19900315{order}")
    assert parse_id_number(number, today=TODAY).gender == gender


# ---------------------------------------------------------------------------------------------
# Cross-check against the person's own answers

MAN = parse_id_number(VALID, today=TODAY)  # male, born 1990-03-15


@pytest.mark.parametrize(
    ("gender", "birth"),
    [("male", date(1990, 3, 15)), (None, None), ("male", None), (None, date(1990, 3, 15))],
)
def test_cross_check_accepts_agreeing_answers(gender: str | None, birth: date | None) -> None:
    cross_check(MAN, gender=gender, birth_date=birth)


@pytest.mark.parametrize(
    ("gender", "birth", "code"),
    [
        ("female", None, "id.gender_mismatch"),
        ("female", date(1990, 3, 15), "id.gender_mismatch"),
        ("female", date(1991, 3, 15), "id.gender_mismatch"),  # gender is reported first
        (None, date(1990, 3, 16), "id.birth_mismatch"),
        ("male", date(1990, 5, 13), "id.birth_mismatch"),
    ],
)
def test_cross_check_reports_disagreement(
    gender: str | None, birth: date | None, code: str
) -> None:
    with pytest.raises(RuleError) as exc:
        cross_check(MAN, gender=gender, birth_date=birth)
    assert _code(exc) == code


def test_cross_check_refuses_unknown_gender_value() -> None:
    with pytest.raises(ValueError):
        cross_check(MAN, gender="M", birth_date=None)


# ---------------------------------------------------------------------------------------------
# Phones


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        " 13812345678 ",
        "138 1234 5678",
        "138-1234-5678",
        "138.1234.5678",
        "(138) 1234-5678",
        "+86 138-1234-5678",
        "+8613812345678",
        "(+86) 138 1234 5678",
        "(+86)13812345678",
        "86 138 1234 5678",
        "8613812345678",
        "0086 13812345678",
        "0086-138-1234-5678",
        "１３８１２３４５６７８",
        "＋８６　１３８－１２３４－５６７８",
        "（＋８６）１３８１２３４５６７８",
        "\u202a13812345678\u202c",  # direction marks from a pasted contact card
    ],
)
def test_normalize_phone_accepts(raw: str) -> None:
    assert normalize_phone(raw) == "13812345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13012345678", "13012345678"),
        ("15900001111", "15900001111"),
        ("19912345678", "19912345678"),
        ("+86 166 0000 0000", "16600000000"),
    ],
)
def test_normalize_phone_prefixes(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12812345678",  # no 12x mobile range
        "11812345678",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "+1 415 555 0100",  # would look like 14155550100 without its "+"
        "+852 9123 4567",
        "+86 12812345678",
        "+8686 13812345678",
        "8612812345678",
        "86138123456",  # 11 digits starting with 86 is not a prefixed number
        "010-12345678",  # a landline
        "1381234567x",
        "138 1234 567８a",
        "138/1234/5678",
        "10086",
    ],
)
def test_normalize_phone_rejects(raw: str) -> None:
    with pytest.raises(RuleError) as exc:
        normalize_phone(raw)
    assert _code(exc) == "phone.format"


# ---------------------------------------------------------------------------------------------
# Free text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  回乡创业五年，带动二十户增收。  ", "回乡创业五年，带动二十户增收。"),
        ("第一段\r\n第二段", "第一段\n第二段"),
        ("第一段\r第二段", "第一段\n第二段"),
        ("第一段\u2028第二段", "第一段\n第二段"),
        ("第一段\n\n第二段", "第一段\n\n第二段"),
        ("第一段\n\n\n\n\n第二段", "第一段\n\n第二段"),
        ("第一段\n  \n\t\n第二段", "第一段\n\n第二段"),  # whitespace-only lines are blank
        ("行尾空格   \n下一行", "行尾空格\n下一行"),
        ("村\u200b支\u200c书\u200d记\u2060\ufeff", "村支书记"),
        ("a\tb", "a b"),
        ("\n\n正文\n\n", "正文"),
    ],
)
def test_clean_text_tidies(raw: str, expected: str) -> None:
    assert clean_text(raw, max_len=500) == expected


@pytest.mark.parametrize(
    "raw", ["a\x00b", "a\x1bb", "a\x07b", "a\x7fb", "a\x85b", "评语\u202e反转", "x\u2066y"]
)
def test_clean_text_rejects_control_characters(raw: str) -> None:
    with pytest.raises(RuleError) as exc:
        clean_text(raw, max_len=500)
    assert _code(exc) == "text.chars"


@pytest.mark.parametrize(
    ("raw", "min_len", "max_len", "ok"),
    [
        ("", 1, 10, False),
        ("   \n\n ", 1, 10, False),
        ("\u200b", 1, 10, False),
        ("一二三四五六七八九十", 1, 10, True),
        ("一二三四五六七八九十一", 1, 10, False),
        ("一二三四", 5, 10, False),
        ("一二三四五", 5, 10, True),
        ("", 0, 10, True),
        ("  一二三四五六七八九十  ", 1, 10, True),  # counted after stripping
    ],
)
def test_clean_text_length(raw: str, min_len: int, max_len: int, ok: bool) -> None:
    if ok:
        clean_text(raw, min_len=min_len, max_len=max_len)
        return
    with pytest.raises(RuleError) as exc:
        clean_text(raw, min_len=min_len, max_len=max_len)
    assert _code(exc) == "text.length"
    assert exc.value.params == {"min": min_len, "max": max_len}


@pytest.mark.parametrize(("min_len", "max_len"), [(5, 4), (-1, 4)])
def test_clean_text_bad_bounds(min_len: int, max_len: int) -> None:
    with pytest.raises(ValueError):
        clean_text("text", min_len=min_len, max_len=max_len)


# ---------------------------------------------------------------------------------------------
# Masking


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("52012319900315123X", "5201**********123X"),
        ("110105194912310021", "1101**********0021"),
    ],
)
def test_mask_id(number: str, masked: str) -> None:
    assert mask_id(number) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13812345678", "138****5678"), ("", ""), ("1234567", "*******")],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked
