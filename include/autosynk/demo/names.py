"""What the demo people and places are called, and how their identity numbers look.

Everything here is invented. Names cover Swedish å ä ö and, on purpose, letters outside
ISO-8859-1 ("Nguyễn", "Łukasz", "Şahin"), because Unikum's files are read in a fixed
encoding and such names are where encodings break. Identity numbers are built with the
Luhn rule (the ``personnummer`` package validates them in the tests) and are written in
the mix of styles real registers deliver: 12 or 10 digits, with or without hyphen,
samordningsnummer (day + 60) and TF numbers.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass

MUNICIPALITY = "Sjöviks kommun"
MUNICIPALITY_DOMAIN = "sjovik.example"
PUPIL_DOMAIN = "elev.sjovik.example"
PRIVATE_DOMAINS = ("example.com", "example.net", "example.org")


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(sep))


@dataclass(frozen=True)
class Culture:
    """Name pools of one naming tradition; a family takes all its names from one."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]


SWEDISH = Culture(
    female=_words(
        "Anna Åsa Maria Karin Sofia Ebba Maja Alice Elsa Wilma Saga Agnes Märta Signe "
        "Ingrid Linnéa Klara Stina Frida Emma Ida Malin Hanna Johanna Lovisa Tove Elin "
        "Sara Britt-Marie Ann-Sofie Greta Astrid Tyra Selma Ella Vera Märit Göta Hedvig "
        "Nora"
    ),
    male=_words(
        "Erik Lars Anders Johan Björn Göran Örjan Måns Nils Olle Per Karl Oskar William "
        "Hugo Elias Axel Albin Viktor Ludvig Isak Emil Filip Gustav Sixten Jöns Håkan "
        "Bengt Jan-Åke Lennart Mattias Henrik Fredrik Sören Torbjörn Ville Love Melker "
        "Arvid Frans"
    ),
    family=_words(
        "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson "
        "Gustafsson Pettersson Jonsson Jansson Hansson Bengtsson Jönsson Lindberg "
        "Jakobsson Magnusson Lindström Olofsson Lindqvist Lindgren Berg Axelsson "
        "Bergström Lundberg Lundgren Lind Lundqvist Mattsson Berglund Fredriksson "
        "Sandberg Henriksson Sjöberg Forsberg Åberg Öberg Sjöström Bäckström Östlund "
        "Hägglund Åkesson Söderberg Nyström Ström Holmström Dahlén Hellström Björklund "
        "Lööf Näslund Törnqvist Wåhlin"
    ),
)

CULTURES: tuple[tuple[Culture, int], ...] = (
    (SWEDISH, 78),
    (
        Culture(
            female=("Linh", "Thảo", "Hương", "Mai", "Ngọc"),
            male=("Minh", "Đức", "Quang", "Tuấn", "Huy"),
            family=("Nguyễn", "Trần", "Phạm", "Lê", "Hoàng"),
        ),
        3,
    ),
    (
        Culture(
            female=("Zofia", "Małgorzata", "Agnieszka", "Katarzyna", "Joanna"),
            male=("Łukasz", "Wojciech", "Piotr", "Paweł", "Michał"),
            family=("Kowalczyk", "Wiśniewski", "Łukaszewicz", "Wójcik", "Kamiński"),
        ),
        4,
    ),
    (
        Culture(
            female=("Ayşe", "Elif", "Gülşen", "Zeynep", "Özlem"),
            male=("Ömer", "Barış", "Emre", "Mehmet", "Çağan"),
            family=("Şahin", "Yılmaz", "Öztürk", "Çelik", "Doğan"),
        ),
        4,
    ),
    (
        Culture(
            female=("Amra", "Jasmina", "Đana", "Lejla", "Selma"),
            male=("Emir", "Dženan", "Adnan", "Haris", "Mirza"),
            family=("Hodžić", "Begić", "Kovačević", "Đorđević", "Mehić"),
        ),
        3,
    ),
    (
        Culture(
            female=("Fatima", "Amina", "Hodan", "Leila", "Yasmin"),
            male=("Ali", "Hassan", "Mohamed", "Yusuf", "Abdi"),
            family=("Ali", "Hassan", "Mohamed", "Abdullahi", "Al-Hakim"),
        ),
        5,
    ),
    (
        Culture(
            female=("Aino", "Sanna", "Päivi", "Tuuli", "Kaisa"),
            male=("Väinö", "Jukka", "Matti", "Eero", "Timo"),
            family=("Virtanen", "Mäkinen", "Järvinen", "Heikkilä", "Kärkkäinen"),
        ),
        3,
    ),
)

STREETS = _words(
    "Storgatan|Kyrkogatan|Skolgatan|Björkvägen|Ekvägen|Lindvägen|Granstigen|Sjövägen|"
    "Ängsvägen|Hagagatan|Järnvägsgatan|Östra Långgatan|Västra Vallgatan|Smedjegatan|"
    "Tallbacken|Rönnvägen|Blåbärsstigen|Lingonvägen|Åkervägen|Ringvägen|Solrosvägen|"
    "Hamngatan|Prästgårdsvägen|Mjölnarvägen",
    sep="|",
)
# (locality, first three digits of its postal codes)
LOCALITIES = (("Sjövik", "456"), ("Sjövik", "457"), ("Norrå", "458"), ("Älvsbacka", "459"))

PLACE_STEMS = _words(
    "Björk Ek Lind Sjö Äng Hög Norr Söder Väster Öster Berg Ås Hag Lund Vik Bäck Sand "
    "Sten Tall Gran Al Ask Rönn Hassel Lönn Ros Klöver Lilje Sol Mån"
)
PLACE_ENDINGS = _words("backe dal äng vik hage lund berg ås holm torp")
DEPARTMENTS = _words(
    "Blåbäret Lingonet Hjortronet Smultronet Ekorren Igelkotten Myran Nyckelpigan "
    "Solrosen Vitsippan Räven Ugglan"
)
GY_PROGRAMMES = _words("NA TE EK SA ES BF EE VO IN HA")


def pick_culture(rng: random.Random) -> Culture:
    cultures, weights = zip(*CULTURES, strict=True)
    return rng.choices(cultures, weights=weights)[0]


_FOLD = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "ø": "o", "ß": "ss"})


def fold_ascii(text: str) -> str:
    """A name as plain lower-case ASCII for e-mail local parts ("Nguyễn" -> "nguyen")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    plain = decomposed.encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum() or ch == "-")


def luhn_digit(nine: str) -> int:
    """The check digit of ``YYMMDDNNN`` (weights 2,1,2,1,...; digit sums)."""
    total = 0
    for index, char in enumerate(nine):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


# How a register writes a number; chosen per person, weights from what registers send.
STYLES = ("12-hyphen", "10-hyphen", "12-plain", "10-plain")
STYLE_WEIGHTS = (86, 6, 5, 3)


class CivicNumbers:
    """Issues unique identity numbers; uniqueness is on the canonical 12 digits."""

    def __init__(self, rng: random.Random, used: set[str] | None = None) -> None:
        self._rng = rng
        self.used: set[str] = used if used is not None else set()

    def personnummer(
        self, birth: dt.date, male: bool, coordination: bool = False, style: str | None = None
    ) -> str:
        rng = self._rng
        style = style or rng.choices(STYLES, weights=STYLE_WEIGHTS)[0]
        day = birth.day + (60 if coordination else 0)
        while True:
            # serial 000 is never issued
            serial = f"{rng.randint(1, 99):02d}{rng.choice('13579' if male else '02468')}"
            nine = f"{birth:%y%m}{day:02d}{serial}"
            last4 = f"{serial}{luhn_digit(nine)}"
            canonical = f"{birth.year:04d}{birth.month:02d}{day:02d}{last4}"
            if canonical not in self.used:
                self.used.add(canonical)
                break
        long_form, short_form = canonical[:8], canonical[2:8]
        return {
            "12-hyphen": f"{long_form}-{last4}",
            "10-hyphen": f"{short_form}-{last4}",
            "12-plain": f"{long_form}{last4}",
            "10-plain": f"{short_form}{last4}",
        }[style]

    def tf_number(self, birth: dt.date) -> str:
        """A TF (reserve) number ``YYYYMMDD-TFNN`` for a pupil without a Swedish number."""
        while True:
            value = f"{birth:%Y%m%d}-TF{self._rng.randint(0, 99):02d}"
            if value not in self.used:
                self.used.add(value)
                return value


def mobile_number(rng: random.Random) -> str:
    head, middle, tail = rng.randint(100, 999), rng.randint(10, 99), rng.randint(10, 99)
    return f"07{rng.choice('0236')}-{head} {middle} {tail}"


def landline_number(rng: random.Random) -> str:
    area = rng.choice(("31", "8", "46", "54"))
    return f"0{area}-{rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def street_address(rng: random.Random) -> dict[str, str]:
    locality, prefix = rng.choice(LOCALITIES)
    street = f"{rng.choice(STREETS)} {rng.randint(1, 120)}"
    if rng.random() < 0.2:
        street += f" lgh {rng.randint(1001, 1504)}"
    return {
        "type": "Folkbokföring",
        "streetAddress": street,
        "postalCode": f"{prefix} {rng.randint(10, 99)}",
        "locality": locality,
        "countyCode": "14",
        "municipalityCode": "1499",
        "country": "Sverige",
    }
