"""Write the seed's history as the French team's analytics export: scenarios/data/export_rdv.csv.

ILLUSTRATIVE NUMBERS: the counts are those of scenarios/data/mandatory_account_history.csv (from
scripts/make_example_data.py), written as a French spreadsheet exports them — `;` separators,
French headers, day-first dates, thousands with a narrow no-break space, a conversion-rate column
with decimal commas (which krsim ignores) — with one week of tracking outage left empty.
Rerun to regenerate: `python scripts/make_french_export.py`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "scenarios" / "data"
SOURCE = DATA / "mandatory_account_history.csv"
OUT = DATA / "export_rdv.csv"
OUTAGE = "2026-03-16"  # the tag manager broke that week: every cell left empty

HEADERS = {
    "period": "Semaine",
    "visits": "Sessions",
    "accompany": "Vues page conseiller",
    "form_start": "Formulaire commencé",
    "form_done": "Formulaire complété",
    "booking": "RDV pris",
    "signup": "Comptes créés",
    "logged_in": "Déjà client",
}


def french_int(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def main() -> None:
    with SOURCE.open() as fh:
        rows = list(csv.DictReader(fh))
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\n")
        w.writerow([*HEADERS.values(), "Taux de conversion RDV (%)"])
        for r in rows:
            day = dt.date.fromisoformat(r["period"]).strftime("%d/%m/%Y")
            if r["period"] == OUTAGE:
                w.writerow([day] + [""] * len(HEADERS))
                continue
            rate = 100 * int(r["booking"]) / int(r["form_done"])
            cells = [french_int(int(r[c])) for c in list(HEADERS)[1:]]
            w.writerow([day, *cells, f"{rate:.1f}".replace(".", ",")])
    print(f"wrote {OUT} ({len(rows)} weeks, one of them empty; illustrative numbers)")


if __name__ == "__main__":
    main()
