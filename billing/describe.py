# Copyright 2026 city-parking contributors (Apache-2.0)
"""Describe a tariff for people, in Chinese and English, as a price board would."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.tariff import CapWindow, Charge, DayType, Rounding, VehicleClass, format_minute

if TYPE_CHECKING:
    from billing.tariff import Band, PricingRules, Tariff, Tier

VEHICLE_ZH = {
    VehicleClass.SMALL_CAR: "小型车",
    VehicleClass.LARGE_CAR: "大型车",
    VehicleClass.NEW_ENERGY: "新能源车",
    VehicleClass.MOTORCYCLE: "摩托车",
}
VEHICLE_EN = {
    VehicleClass.SMALL_CAR: "small cars",
    VehicleClass.LARGE_CAR: "large vehicles",
    VehicleClass.NEW_ENERGY: "new-energy vehicles",
    VehicleClass.MOTORCYCLE: "motorcycles",
}
DAY_ZH = {DayType.WEEKDAY: "工作日", DayType.WEEKEND: "周末", DayType.HOLIDAY: "节假日"}
DAY_EN = {DayType.WEEKDAY: "weekdays", DayType.WEEKEND: "weekends", DayType.HOLIDAY: "holidays"}
HOUR = 60


def yuan(amount_fen: int) -> str:
    """Return fen as yuan without trailing zeros: 400 -> "4", 250 -> "2.5", 5 -> "0.05"."""
    whole, part = divmod(amount_fen, 100)
    if not part:
        return str(whole)
    return f"{whole}.{part // 10}" if part % 10 == 0 else f"{whole}.{part:02d}"


def ordinal(n: int) -> str:
    """Return 1 -> "1st", 2 -> "2nd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _unit_zh(minutes: int) -> str:
    if minutes % HOUR == 0:
        return f"{minutes // HOUR}小时"
    return f"{minutes}分钟"


def _unit_en(minutes: int) -> str:
    if minutes == HOUR:
        return "hour"
    if minutes % HOUR == 0:
        return f"{minutes // HOUR} hours"
    return f"{minutes} minutes"


def _range_zh(tier: Tier) -> str:
    lo, hi = tier.start_min, tier.end_min
    if lo % HOUR or (hi is not None and hi % HOUR):
        if hi is None:
            return f"{lo}分钟后"
        return f"前{hi}分钟" if lo == 0 else f"第{lo + 1}–{hi}分钟"
    if hi is None:
        return "" if lo == 0 else f"第{lo // HOUR + 1}小时起"
    if lo == 0:
        return "首小时" if hi == HOUR else f"前{hi // HOUR}小时"
    first, last = lo // HOUR + 1, hi // HOUR
    return f"第{first}小时" if first == last else f"第{first}–{last}小时"


def _range_en(tier: Tier) -> str:
    lo, hi = tier.start_min, tier.end_min
    if lo % HOUR or (hi is not None and hi % HOUR):
        if hi is None:
            return f"after {lo} minutes"
        return f"first {hi} minutes" if lo == 0 else f"minutes {lo + 1}–{hi}"
    if hi is None:
        return "" if lo == 0 else f"from the {ordinal(lo // HOUR + 1)} hour"
    if lo == 0:
        return "first hour" if hi == HOUR else f"first {hi // HOUR} hours"
    first, last = lo // HOUR + 1, hi // HOUR
    if first == last:
        return f"{ordinal(first)} hour"
    return f"{ordinal(first)}–{ordinal(last)} hour"


def _tier_zh(tier: Tier) -> str:
    price = f"{yuan(tier.unit_price_fen)}元"
    whole = tier.end_min is not None and tier.end_min - tier.start_min == tier.unit_min
    per = "" if whole else "每小时" if tier.unit_min == HOUR else f"每{_unit_zh(tier.unit_min)}"
    return f"{_range_zh(tier)}{per}{price}"


def _tier_en(tier: Tier) -> str:
    price = f"¥{yuan(tier.unit_price_fen)}"
    whole = tier.end_min is not None and tier.end_min - tier.start_min == tier.unit_min
    per = "" if whole else f" per {_unit_en(tier.unit_min)}"
    return f"{_range_en(tier)} {price}{per}".strip()


def _rounding(band: Band) -> tuple[str, str]:
    units = {t.unit_min for t in band.tiers}
    zh_unit = _unit_zh(units.pop()) if len(units) == 1 else "一个计费单位"
    en_unit = "hour" if zh_unit == "1小时" else "unit"
    if band.rounding is Rounding.UP:
        return f"不足{zh_unit}按{zh_unit}计", f"part {en_unit}s rounded up"
    if band.rounding is Rounding.DOWN:
        return f"不足{zh_unit}不计费", f"part {en_unit}s free"
    return f"不足半个{zh_unit}不计费、满半个按{zh_unit}计", f"part {en_unit}s rounded half up"


def _band(band: Band) -> tuple[str, str]:
    days_zh = days_en = ""
    if band.day_types != tuple(DayType):
        days_zh = "、".join(DAY_ZH[d] for d in band.day_types)
        days_en = "/".join(DAY_EN[d] for d in band.day_types) + " "
    when = f"{format_minute(band.start_min)}–{format_minute(band.end_min)}"
    head_zh = f"{days_zh}{band.name_zh} {when}："
    head_en = f"{days_en}{band.name_en} {when}: "
    if band.charge is Charge.FREE:
        return head_zh + "免费", head_en + "free"
    if band.charge is Charge.FLAT:
        zh, en = [f"每次{yuan(band.flat_fee_fen)}元"], [f"¥{yuan(band.flat_fee_fen)} per entry"]
    else:
        round_zh, round_en = _rounding(band)
        zh = [*(_tier_zh(t) for t in band.tiers), round_zh]
        en = [*(_tier_en(t) for t in band.tiers), round_en]
    if band.max_fee_fen is not None:
        zh.append(f"每段最高{yuan(band.max_fee_fen)}元")
        en.append(f"at most ¥{yuan(band.max_fee_fen)} per {band.name_en}")
    return head_zh + "，".join(zh), head_en + ", ".join(en)


def describe_rules(rules: PricingRules) -> tuple[str, str]:
    """Return (zh, en) sentences for one set of pricing rules."""
    parts = [_band(b) for b in rules.bands]
    zh, en = [p[0] for p in parts], [p[1] for p in parts]
    n = rules.free_minutes
    if n and rules.free_minutes_deducted:
        zh.append(f"前{n}分钟免费")
        en.append(f"the first {n} minutes are free")
    elif n:
        zh.append(f"{n}分钟内免费，超过{n}分钟从入场起计费")
        en.append(f"stays up to {n} minutes are free, longer stays pay from entry")
    if rules.daily_max_fee_fen is not None:
        cap = yuan(rules.daily_max_fee_fen)
        if rules.daily_window is CapWindow.CALENDAR_DAY:
            zh.append(f"每日最高{cap}元")
            en.append(f"at most ¥{cap} per calendar day")
        else:
            zh.append(f"任意24小时内最高{cap}元")
            en.append(f"at most ¥{cap} in any 24 hours")
    if rules.session_max_fee_fen is not None:
        zh.append(f"每次停车最高{yuan(rules.session_max_fee_fen)}元")
        en.append(f"at most ¥{yuan(rules.session_max_fee_fen)} per stay")
    return "；".join(zh), "; ".join(en)


def describe_tariff(tariff: Tariff) -> dict[str, str]:
    """Return a one-paragraph human summary of *tariff* under the keys "zh" and "en"."""
    zh, en = describe_rules(tariff.rules)
    zh_parts, en_parts = [zh], [en]
    for rule in tariff.vehicle_rules:
        cls = rule.vehicle_class
        if rule.rules is not None:
            own_zh, own_en = describe_rules(rule.rules)
            zh_parts.append(f"{VEHICLE_ZH[cls]}：{own_zh}")
            en_parts.append(f"{VEHICLE_EN[cls]}: {own_en}")
        else:
            zh_parts.append(f"{VEHICLE_ZH[cls]}按标准的{rule.factor_percent}%收费")
            en_parts.append(f"{VEHICLE_EN[cls]} pay {rule.factor_percent}% of these prices")
    if tariff.reservation_fee_fen:
        zh_parts.append(f"预约费{yuan(tariff.reservation_fee_fen)}元（截止时间前取消免费）")
        en_parts.append(
            f"reservations cost ¥{yuan(tariff.reservation_fee_fen)} (free to cancel before the cut-off)"
        )
    if tariff.no_show_fee_fen:
        zh_parts.append(f"预约未到场另收{yuan(tariff.no_show_fee_fen)}元")
        en_parts.append(f"a reservation not shown up for costs ¥{yuan(tariff.no_show_fee_fen)} more")
    since = tariff.valid_from.isoformat()
    until = "" if tariff.valid_to is None else f"至{tariff.valid_to.isoformat()}前"
    until_en = "" if tariff.valid_to is None else f" until {tariff.valid_to.isoformat()}"
    return {
        "zh": f"{tariff.name_zh}（{since}起{until}）：" + "；".join(zh_parts) + "。",
        "en": f"{tariff.name_en} (from {since}{until_en}): " + "; ".join(en_parts) + ".",
    }
