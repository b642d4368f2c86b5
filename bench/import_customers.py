"""Customer import benchmark: `sapa customers import FILE` on a generated CSV.

    .venv/bin/python bench/import_customers.py [--rows 100000] [--postgres URL] [--seed 1]

Generates a CSV (name,phone,email,language) of realistic Indonesian customers: phones like
0812-3456-7890 in the usual spellings, mostly unique; about 1% deliberately invalid rows (bad phone,
bad email, unknown language, no contact at all) and about 1% repeats of an earlier customer by
phone or by email. Then migrates a fresh temporary SQLite database (or the --postgres URL) with
`sapa db upgrade`, runs `sapa customers import FILE` as a subprocess, and reports the wall time,
rows per second and the command's own summary line next to what the file should produce.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from workspace import prepare_sapa, sapa_command

FIRST = (
    "Budi Agus Andi Dedi Eko Hendra Joko Rudi Slamet Wahyu Yusuf Rizky Fajar Bayu Dimas Arif Bambang "
    "Hadi Irfan Putra Aditya Gilang Reza Taufik Ilham Sri Siti Dewi Ayu Rina Wati Fitri Indah Lestari "
    "Nur Putri Ratna Yuni Maya Dian Kartika Anisa Nadia Rahmawati Intan Mega Wulan Sari Fransiska Maria "
    "Yohanes Made Ketut Nyoman Wayan Komang Gede Agung Ni Luh Hana Ahmad Muhammad Abdul Imam Teguh"
).split()
LAST = (
    "Santoso Wijaya Saputra Hidayat Setiawan Kurniawan Pratama Nugroho Gunawan Susanto Wibowo Halim "
    "Siregar Nasution Harahap Lubis Simanjuntak Sitompul Tambunan Pangaribuan Ginting Sembiring Tarigan "
    "Hutapea Manurung Situmorang Permana Ramadhan Firmansyah Maulana Hakim Sulistyo Purnomo Suryadi "
    "Handoko Tanoto Salim Lim Tan Gozali Kusuma Utomo Rahayu Anggraini Pertiwi Wulandari Puspita Sari "
    "Suharto Sudirman Hartono Yulianti Kusumawati Rahman Effendi Iskandar Siswanto Mulyadi Sinaga "
    "Panjaitan Pardede Wenas Mandagi Lumban Tobing Rumbewas Pattinama Latuconsina"
).split()
MOBILE_PREFIXES = (
    "0811 0812 0813 0821 0822 0823 0851 0852 0853 0814 0815 0816 0855 0856 0857 0858 0817 0818 0819 "
    "0859 0877 0878 0831 0832 0833 0838 0895 0896 0897 0898 0899 0881 0882 0883 0887 0888 0889"
).split()
MAIL_DOMAINS = ["gmail.com"] * 8 + ["yahoo.co.id"] * 2 + ["yahoo.com", "outlook.com", "hotmail.com", "ymail.com"]
SUMMARY = re.compile(r"^imported \d+ rows in .*bad rows skipped$", re.M)


@dataclass
class Expected:
    rows: int = 0
    customers: int = 0  # distinct valid customers: what the import should create on an empty database
    duplicates: int = 0  # rows repeating an earlier customer by phone or email
    invalid: int = 0  # rows that must be reported and skipped


def spell_phone(digits: str, rng: random.Random) -> str:
    """0812xxxxxxxx in the spellings people really type."""
    rest = digits[1:]
    style = rng.random()
    if style < 0.55:
        return digits
    if style < 0.75:
        return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"
    if style < 0.85:
        return f"+62{rest}"
    if style < 0.93:
        return f"+62 {rest[:3]} {rest[3:7]} {rest[7:]}"
    return f"62{rest}"


def invalid_row(rng: random.Random, n: int) -> list[str]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    kind = n % 5
    if kind == 0:  # too short to be a phone number
        return [name, f"0812-{rng.randint(100, 999)}", "", "id"]
    if kind == 1:  # letters in the phone
        return [name, f"0812345abc{rng.randint(10, 99)}", "", "id"]
    if kind == 2:  # broken email, no phone
        return [name, "", f"{name.split()[0].lower()}{n}@gmail", "id"]
    if kind == 3:  # unknown language
        return [name, f"0857{rng.randint(10_000_000, 99_999_999)}", "", "jp"]
    return [name, "", "", "id"]  # neither phone nor email


def generate(path: Path, rows: int, seed: int) -> Expected:
    rng = random.Random(seed)
    expected = Expected(rows=rows)
    used_phones: set[str] = set()
    made: list[tuple[str, str, str]] = []  # (name, phone digits, email) of valid customers so far
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "phone", "email", "language"])
        for n in range(rows):
            roll = rng.random()
            if roll < 0.01:
                writer.writerow(invalid_row(rng, n))
                expected.invalid += 1
                continue
            if roll < 0.02 and made:
                name, phone, email = rng.choice(made)
                if rng.random() < 0.6 or not email:
                    # Same phone, spelled differently; the email may be new or blank.
                    new_email = "" if rng.random() < 0.5 else email
                    writer.writerow(
                        [name.upper() if rng.random() < 0.3 else name, spell_phone(phone, rng), new_email, ""]
                    )
                else:
                    # Same email with no phone: the same person, found by email.
                    writer.writerow([name, "", email.upper() if rng.random() < 0.3 else email, "id"])
                expected.duplicates += 1
                continue
            first, last = rng.choice(FIRST), rng.choice(LAST)
            name = f"{first} {last}" if rng.random() < 0.85 else f"{first} {rng.choice(FIRST)} {last}"
            while True:
                phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
                if phone not in used_phones:
                    used_phones.add(phone)
                    break
            email = ""
            if rng.random() < 0.75:
                sep = rng.choice([".", "_", ""])
                email = f"{first.lower()}{sep}{last.lower()}{n}@{rng.choice(MAIL_DOMAINS)}"
            language = rng.choices(["id", "en", ""], weights=[80, 8, 12])[0]
            writer.writerow([name, spell_phone(phone, rng), email, language])
            made.append((name, phone, email))
            expected.customers += 1
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="CSV rows to generate (default 100000)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=None,
        help="use this DATABASE_URL (postgresql+psycopg://...) instead of a temporary SQLite file; "
        "use an empty database, or created/updated counts will differ from the expectation",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the generated file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSV, database)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="sapa-bench-import-"))
    csv_path = workdir / "customers.csv"
    database_url = args.postgres or f"sqlite:///{workdir / 'sapa.db'}"
    backend = "postgresql" if args.postgres else "sqlite"
    print(
        f"Sapa customer import benchmark: {args.rows} rows, {backend} database, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    expected = generate(csv_path, args.rows, args.seed)
    print(
        f"generated {csv_path} ({csv_path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s: "
        f"{expected.customers} customers, {expected.duplicates} repeats, {expected.invalid} invalid rows"
    )

    try:
        env = prepare_sapa(workdir, database_url)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1

    command = [*sapa_command(), "--log-level", "WARNING", "customers", "import", str(csv_path)]
    started = time.perf_counter()
    run = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    found = SUMMARY.findall(run.stdout)
    summary = found[-1] if found else None
    bad_lines = [line for line in run.stderr.splitlines() if line.startswith("line ")]

    print()
    print(f"{'rows':>8} {'wall s':>8} {'rows/s':>9}  exit")
    print(f"{args.rows:>8} {wall:>8.2f} {args.rows / wall:>9.0f}  {run.returncode}")
    print(f"\nsapa says: {summary or '(no summary line)'}")
    print(
        f"expected:  {expected.customers} new customers, {expected.duplicates} duplicates merged, "
        f"{expected.invalid} bad rows skipped"
    )
    if bad_lines:
        print(f"first reported bad rows ({len(bad_lines)} listed on stderr):")
        for line in bad_lines[:5]:
            print(f"  {line}")
    if run.returncode != 0 or not summary:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-30:])
        print(f"\n`sapa customers import` failed or printed no summary (exit {run.returncode}):\n{tail}")

    numbers = {}
    if summary:
        match = re.search(
            r"imported (\d+) rows in ([\d.]+)s: (\d+) new customers, (\d+) updated, "
            r"(\d+) duplicates merged, (\d+) bad rows skipped",
            summary,
        )
        if match:
            keys = ("imported", "import_s", "created", "updated", "duplicates_merged", "bad_rows")
            numbers = {k: (float(v) if k == "import_s" else int(v)) for k, v in zip(keys, match.groups(), strict=True)}
    mismatches = {
        key: (numbers.get(key), want)
        for key, want in (
            ("created", expected.customers),
            ("duplicates_merged", expected.duplicates),
            ("bad_rows", expected.invalid),
        )
        if numbers and numbers.get(key) != want
    }
    if mismatches:
        print(
            "MISMATCH between what sapa reported and what the file holds (reported, expected): "
            + ", ".join(f"{k} {v}" for k, v in mismatches.items())
        )
    result = {
        "benchmark": "import_customers",
        "backend": backend,
        "rows": args.rows,
        "wall_s": round(wall, 3),
        "rows_per_s": round(args.rows / wall, 1),
        "exit_code": run.returncode,
        "summary": summary,
        "reported": numbers,
        "expected": {
            "created": expected.customers,
            "duplicates_merged": expected.duplicates,
            "bad_rows": expected.invalid,
        },
        "mismatches": {k: {"reported": r, "expected": e} for k, (r, e) in mismatches.items()},
    }
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))
    return 0 if run.returncode == 0 and summary else 1


if __name__ == "__main__":
    sys.exit(main())
