"""The knowledge base in real Chromium against a real `sapa serve` (issue 17): an editor changes a FAQ answer in the
console and the customer in the web chat (another browser) gets the new text at once; a mistake is shown next to its
field and keeps what was typed; history and "try a question". Every page is photographed at desktop and phone width
(var/screenshots/console-knowledge-*.png), checked for sideways scrolling on the phone, JavaScript errors and requests
leaving 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.devtools.fake_providers import FakeProviders
from tests.support.console import (
    SIZES,
    ChatCustomer,
    Member,
    Watch,
    assert_fits,
    browsing,
    console_server,
    screenshot,
    sign_in,
)
from tests.support.server import SapaServer

pytestmark = pytest.mark.browser

EDITOR = Member("Putri Wulandari", "putri@contoh.example", "supervisor")
READER = Member("Dewi Anggraini", "dewi@contoh.example", "customer_service")
QUESTION = "kak jam buka tokonya jam brp ya?"
NEW_ANSWER = "Mulai Desember toko {{ company }} buka pukul 09.00–22.00 WIB setiap hari, termasuk hari libur."
NEW_ANSWER_SHOWN = ("Mulai Desember toko PT Contoh Sejahtera buka pukul 09.00–22.00 WIB setiap hari, termasuk "
                    "hari libur.")


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeProviders]:
    with FakeProviders() as fakes:
        yield fakes


@pytest.fixture(scope="module")
def server(browser: Any, fakes: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SapaServer]:
    workdir = tmp_path_factory.mktemp("sapa-knowledge")
    with console_server(workdir, fakes, EDITOR, READER) as server:
        yield server


def test_an_editor_changes_a_faq_answer_and_the_web_chat_uses_it_at_once(browser: Any, server: SapaServer) -> None:
    from playwright.sync_api import expect

    watch = Watch()
    with browsing(browser, server, size="phone", watch=watch) as chat, \
            browsing(browser, server, watch=watch) as console:
        customer = ChatCustomer(chat, server).open()
        customer.write("halo")
        customer.write("Rina")
        customer.write(QUESTION)
        expect(customer.sees("buka setiap hari pukul 10.00–21.00 WIB")).to_be_visible()

        sign_in(console, server, EDITOR, "/console/knowledge")
        console.get_by_label("Cari").fill("jam buka")
        console.get_by_role("button", name="Terapkan").click()
        console.get_by_role("link", name="Jam berapa toko buka?").first.click()
        expect(console.locator("h1")).to_have_text("Jam berapa toko buka?")

        # A mistake: the English answer emptied. Refused next to the field; what was typed stays.
        console.get_by_label("Jawaban (ID)").fill(NEW_ANSWER)
        console.get_by_label("Jawaban (EN)").fill("")
        console.get_by_role("button", name="Simpan").click()
        expect(console.locator(".notice.error")).to_have_text("Belum disimpan: perbaiki yang ditandai di bawah.")
        expect(console.locator("#e-answer_en")).to_contain_text("the answer in en is missing")
        expect(console.get_by_label("Jawaban (ID)")).to_have_value(NEW_ANSWER)

        console.get_by_label("Jawaban (EN)").fill("From December our stores open 09:00–22:00 WIB every day.")
        console.get_by_label("Catatan perubahan (opsional)").fill("jam buka baru mulai Desember")
        console.get_by_role("button", name="Simpan").click()
        expect(console.locator(".notice")).to_have_text("Tersimpan. Bot memakai teks baru mulai sekarang.")

        customer.write("min toko tutup jam berapa")  # at once: no restart, no waiting for a cache
        expect(customer.sees(NEW_ANSWER_SHOWN)).to_be_visible()

        console.get_by_role("link", name="Riwayat").click()
        expect(console.locator(".kb-revision").first).to_contain_text("oleh Putri Wulandari")
        expect(console.locator(".kb-revision").first.locator("td.after").first).to_contain_text(NEW_ANSWER)
        expect(console.locator(".kb-note").first).to_have_text("“jam buka baru mulai Desember”")

        console.goto(f"{server.base_url}/console/knowledge/try?q=jam+buka+toko+hari+minggu", wait_until="load")
        expect(console.locator(".kb-result h2")).to_have_text("Dijawab oleh entri opening_hours")
        expect(console.locator(".kb-reply")).to_contain_text("Mulai Desember toko PT Contoh Sejahtera")
    watch.assert_clean()


def test_the_pages_at_desktop_and_phone_width(browser: Any, server: SapaServer) -> None:
    from playwright.sync_api import expect

    watch = Watch()
    pages = {
        "list": "/console/knowledge",
        "list-templates": "/console/knowledge?section=templates&q=faq_",
        "edit": "/console/knowledge/faq/opening_hours",
        "template": "/console/knowledge/templates/faq_no_answer",
        "history": "/console/knowledge/faq/opening_hours/history",
        "try": "/console/knowledge/try?q=ada+lowongan+kerja+untuk+kurir%3F",
        "try-answered": "/console/knowledge/try?q=bisa+bayar+pake+kartu+debit+ga",
    }
    for size in SIZES:
        with browsing(browser, server, size=size, watch=watch) as console:
            sign_in(console, server, EDITOR, "/console/knowledge")
            for name, path in pages.items():
                console.goto(f"{server.base_url}{path}", wait_until="load")
                expect(console.locator("h1")).to_be_visible()
                assert_fits(console, size)
                screenshot(console, f"knowledge-{name}", size)
            # The same form with its errors, as an editor sees it after a mistake.
            console.goto(f"{server.base_url}/console/knowledge/faq/warranty", wait_until="load")
            console.get_by_label("Jawaban (ID)").fill("Garansi {% if name %}resmi")
            console.get_by_label("Jawaban (EN)").fill("")
            console.get_by_role("button", name="Simpan").click()
            expect(console.locator(".notice.error")).to_be_visible()
            assert_fits(console, size)
            screenshot(console, "knowledge-edit-errors", size)
    with browsing(browser, server, size="phone", watch=watch) as reader:
        sign_in(reader, server, READER, "/console/knowledge")
        reader.goto(f"{server.base_url}/console/knowledge/faq/opening_hours", wait_until="load")
        expect(reader.locator(".notice.warn")).to_contain_text("mengubah perlu peran supervisor")
        expect(reader.get_by_role("button", name="Simpan")).to_have_count(0)
        assert_fits(reader, "phone")
        screenshot(reader, "knowledge-read-only", "phone")
    watch.assert_clean()
