"""The dashboard's sales chart laid out on the server: bars, a y-axis with round steps in the
user's number format, and date labels that stay inside the drawing (the first one starts at
the first bar, the last one ends at the last), all as numbers the SVG template only prints."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.dates import format_skeleton
from babel.numbers import format_compact_decimal, get_currency_symbol
from flask import current_app
from flask_babel import get_locale, gettext

from ..formatting import local_date, money, number

WIDTH, HEIGHT = 720, 240  # the viewBox; the SVG scales to its card's width
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 26, 26  # room for the y labels, the last date, the axis caption, the dates
LABEL_EVERY = 7  # days between date labels
COMPACT_FROM = 10_000  # an axis reaching this far labels its steps short (10K, 1.5M)


@dataclass(frozen=True)
class Bar:
    day: date
    amount: Decimal
    x: float
    y: float
    width: float
    height: float
    title: str  # "Dec 3, 2026: IDR 80.16"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    anchor: str  # text-anchor: start, middle or end
    label: str


@dataclass(frozen=True)
class SalesChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    base: float  # the y of the zero line
    bars: list[Bar]
    ticks: list[Tick]
    days: list[DayLabel]
    currency: str  # the symbol the y-axis is in
    total: str
    peak: Bar | None  # the best day, None when nothing sold


def sales_chart(sales: list[tuple[date, Decimal]]) -> SalesChart:
    locale = get_locale()
    plot_width, base = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM
    steps = axis_steps(max((amount for _, amount in sales), default=Decimal(0)))
    top_value = steps[-1]
    scale = (base - TOP) / top_value
    slot = plot_width / len(sales)
    bars = []
    for i, (day, amount) in enumerate(sales):
        height = float(amount * scale)
        bars.append(
            Bar(
                day,
                amount,
                x=LEFT + i * slot + 1,
                y=base - height,
                width=slot - 2,
                height=height,
                title=gettext("%(day)s: %(amount)s", day=local_date(day), amount=money(amount)),
            )
        )
    compact = top_value >= COMPACT_FROM  # one style for the whole axis: "8K" beside "10K", not "8,000"
    ticks = [Tick(base - float(value * scale), axis_label(value, locale, compact)) for value in steps]
    days = [
        DayLabel(_day_x(i, len(sales), slot), _anchor(i, len(sales)), format_skeleton("MMMd", day, locale=locale))
        for i, (day, _) in enumerate(sales)
        if i == len(sales) - 1 or (i % LABEL_EVERY == 0 and len(sales) - 1 - i > LABEL_EVERY // 2)
    ]
    best = max(bars, key=lambda bar: bar.amount, default=None)
    return SalesChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        base=base,
        bars=bars,
        ticks=ticks,
        days=days,
        currency=get_currency_symbol(current_app.config["CURRENCY"], locale),
        total=money(sum((amount for _, amount in sales), Decimal("0.00"))),
        peak=best if best is not None and best.amount > 0 else None,
    )


def axis_steps(peak: Decimal, most: int = 5) -> list[Decimal]:
    """0 and round steps (1, 2 or 5 times a power of ten) up to at least ``peak``, at most
    ``most`` of them above 0: 80.16 gives 0, 20, 40, 60, 80, 100."""
    if peak <= 0:
        return [Decimal(0), Decimal(1)]
    raw = peak / most
    power = Decimal(10) ** (raw.adjusted())
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    count = int((peak / step).to_integral_value(rounding="ROUND_CEILING"))
    return [step * n for n in range(count + 1)]


def axis_label(value: Decimal, locale, compact: bool) -> str:
    """A y-axis value in the user's number format: 500, 1,500; short when the axis reaches
    COMPACT_FROM: 250K, 1.5M ("250 rb", "1,5 jt" in Indonesian)."""
    if not compact:
        return number(int(value) if value == value.to_integral_value() else value)
    return format_compact_decimal(value, locale=locale, fraction_digits=1)


def _day_x(i: int, count: int, slot: float) -> float:
    if i == 0:
        return LEFT
    if i == count - 1:
        return WIDTH - RIGHT
    return LEFT + i * slot + slot / 2


def _anchor(i: int, count: int) -> str:
    # The first label starts at the chart's left edge and the last ends at its right edge:
    # centred under their bars, half of each would fall outside the drawing.
    return "start" if i == 0 else "end" if i == count - 1 else "middle"
