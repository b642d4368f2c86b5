"""What marketing's pages share: who may open them (campaigns.manage), the notices after a form, and their words
(Indonesian first, English second; keys camp., seg., bc., loy.)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from bot import limits
from bot.console import auth
from bot.console.auth import StaffUser
from bot.console.web import outcome_notice, texts


async def _marketer(request: Request,
                    staff: Annotated[StaffUser, Depends(auth.require("campaigns.manage"))]) -> StaffUser:
    """The signed-in member of staff whose role may run campaigns (marketing, admin), CSRF-checked on POST; a query
    or form value no database could store (a NUL, a lone surrogate, past limits.MAX_FIELD) is a 422 that says
    which, before any of it reaches a query (bot/limits.py, issue 15)."""
    values = list(request.query_params.multi_items())
    if request.method == "POST":
        values += [(key, value) for key, value in (await request.form()).multi_items() if isinstance(value, str)]
    for key, value in values:
        problem = limits.text_problem(key, "a field name", 100) or limits.text_problem(value, key[:40])
        if problem:
            raise HTTPException(422, problem)
    return staff


Marketer = Annotated[StaffUser, Depends(_marketer)]

OUTCOMES = {
    "segment_saved": "ok", "segment_updated": "ok", "segment_deleted": "ok", "segment_refused": "error",
    "created": "ok", "tested": "ok", "test_refused": "error", "scheduled": "ok", "schedule_refused": "error",
    "paused": "ok", "resumed": "ok", "cancelled": "ok", "refused": "error", "export_not_yet": "error",
    "reward_stock": "ok", "reward_disable": "ok", "reward_enable": "ok", "reward_refused": "error",
}


def outcome(request: Request) -> dict[str, str] | None:
    return outcome_notice(request, OUTCOMES, "camp.outcome.")


def _t(id_: str, en: str) -> dict[str, str]:
    return {"id": id_, "en": en}


texts({
    # outcomes of the forms
    "camp.outcome.segment_saved": _t("Segmen disimpan.", "Segment saved."),
    "camp.outcome.segment_updated": _t("Segmen diperbarui dengan filter ini.", "Segment updated with these filters."),
    "camp.outcome.segment_deleted": _t("Segmen dihapus. Siaran yang memakainya tetap memakai filternya.",
                                       "Segment deleted. Broadcasts that used it keep its filters."),
    "camp.outcome.segment_refused": _t("Tidak dilakukan:", "Not done:"),
    "camp.outcome.created": _t("Draf siaran dibuat. Periksa pratinjau, kirim uji ke diri sendiri, lalu jadwalkan.",
                               "Broadcast draft created. Check the preview, send yourself a test, then schedule it."),
    "camp.outcome.tested": _t("Pesan uji diantrekan ke alamat Anda (tidak dihitung sebagai penerima).",
                              "Test message queued to your address (not counted as a recipient)."),
    "camp.outcome.test_refused": _t("Pesan uji tidak dikirim:", "Test not sent:"),
    "camp.outcome.scheduled": _t("Siaran dijadwalkan.", "Broadcast scheduled."),
    "camp.outcome.schedule_refused": _t("Tidak dijadwalkan:", "Not scheduled:"),
    "camp.outcome.paused": _t("Siaran dijeda. Pesan yang belum terkirim menunggu.",
                              "Broadcast paused. Messages not sent yet wait."),
    "camp.outcome.resumed": _t("Siaran dilanjutkan.", "Broadcast resumed."),
    "camp.outcome.cancelled": _t("Siaran dibatalkan. Pesan yang belum terkirim ditarik.",
                                 "Broadcast cancelled. Messages not sent yet were withdrawn."),
    "camp.outcome.refused": _t("Tidak dilakukan:", "Not done:"),
    "camp.outcome.export_not_yet": _t("Ekspor penerima tersedia setelah siaran selesai atau dibatalkan.",
                                      "The recipients export is available once the broadcast is done or cancelled."),
    "camp.outcome.reward_stock": _t("Stok hadiah diperbarui.", "Reward stock updated."),
    "camp.outcome.reward_disable": _t("Hadiah tidak ditawarkan lagi (voucher yang sudah terbit tetap berlaku).",
                                      "Reward no longer offered (vouchers already issued stay valid)."),
    "camp.outcome.reward_enable": _t("Hadiah ditawarkan lagi.", "Reward offered again."),
    "camp.outcome.reward_refused": _t("Tidak dilakukan:", "Not done:"),
    # the overview
    "camp.new_broadcast": _t("Siaran baru", "New broadcast"),
    "camp.broadcasts": _t("Siaran", "Broadcasts"),
    "camp.broadcast": _t("Siaran", "Broadcast"),
    "camp.status": _t("Status", "Status"),
    "camp.channels": _t("Kanal (urutan pilihan)", "Channels (preference order)"),
    "camp.channel": _t("Kanal", "Channel"),
    "camp.queued": _t("Diantrekan", "Queued"),
    "camp.skipped": _t("Dilewati", "Skipped"),
    "camp.when": _t("Waktu", "When"),
    "camp.actions": _t("Tindakan", "Actions"),
    "camp.no_broadcasts": _t("Belum ada siaran.", "No broadcasts yet."),
    "camp.no_channels": _t("Tidak ada kanal WhatsApp, SMS atau Telegram yang aktif: siaran tidak bisa dikirim.",
                           "No WhatsApp, SMS or Telegram channel is enabled: broadcasts cannot be sent."),
    # segments
    "seg.title": _t("Segmen", "Segments"),
    "seg.build": _t("Bangun segmen", "Build a segment"),
    "seg.preview": _t("Hitung dan lihat contoh", "Count and show a sample"),
    "seg.count_title": _t("Siapa yang cocok", "Who matches"),
    "seg.invalid": _t("Filter tidak bisa dipakai:", "These filters cannot be used:"),
    "seg.match": _t("pelanggan cocok", "customers match"),
    "seg.eligible": _t("boleh menerima pemasaran", "may receive marketing"),
    "seg.described": _t("Filter", "Filters"),
    "seg.opted_out": _t("Berhenti berlangganan (STOP)", "Opted out (STOP)"),
    "seg.no_consent": _t("Belum pernah memberi izin pemasaran", "Never gave marketing consent"),
    "seg.by_channel": _t("Terjangkau lewat {channel}", "Reachable on {channel}"),
    "seg.unreachable": _t("Tanpa kanal yang terjangkau", "No reachable channel"),
    "seg.samples": _t("Contoh pelanggan", "Sample customers"),
    "seg.samples_hint": _t("Nama, bahasa, tingkat dan status VIP saja: percakapan tidak ditampilkan di sini.",
                           "Names, language, tier and VIP status only: conversations are not shown here."),
    "seg.no_samples": _t("Tidak ada pelanggan yang boleh menerima pemasaran di segmen ini.",
                         "Nobody in this segment may receive marketing."),
    "seg.name": _t("Nama segmen", "Segment name"),
    "seg.name_hint": _t("Tanpa spasi, mis. loyal_jakarta. Nama yang sudah ada akan diperbarui.",
                        "No spaces, e.g. loyal_jakarta. An existing name is updated."),
    "seg.save": _t("Simpan filter ini", "Save these filters"),
    "seg.saved": _t("Segmen tersimpan", "Saved segments"),
    "seg.filters": _t("Filter", "Filters"),
    "seg.updated": _t("Diperbarui", "Updated"),
    "seg.open": _t("Buka", "Open"),
    "seg.use": _t("Pakai untuk siaran", "Use for a broadcast"),
    "seg.delete": _t("Hapus", "Delete"),
    "seg.delete_named": _t("Hapus segmen {name}", "Delete segment {name}"),
    "seg.none_saved": _t("Belum ada segmen tersimpan.", "No saved segments yet."),
    "seg.f.loyalty_tier": _t("Tingkat loyalitas", "Loyalty tier"),
    "seg.f.segment": _t("Segmen RFM", "RFM segment"),
    "seg.f.channel": _t("Terjangkau lewat kanal", "Reachable on channel"),
    "seg.f.channel_hint": _t("Salah satu yang dicentang.", "Any of those ticked."),
    "seg.f.language": _t("Bahasa", "Language"),
    "seg.f.vip": _t("VIP", "VIP"),
    "seg.f.vip_status": _t("Status VIP", "VIP status"),
    "seg.f.any": _t("Semua", "Anyone"),
    "seg.f.vip_only": _t("Hanya VIP", "VIPs only"),
    "seg.f.not_vip": _t("Bukan VIP", "Not VIP"),
    "seg.f.vip_tier": _t("Tingkat VIP (pisahkan dengan koma)", "VIP tiers (comma-separated)"),
    "seg.f.points": _t("Saldo poin", "Points balance"),
    "seg.f.min_points": _t("Minimal", "At least"),
    "seg.f.max_points": _t("Maksimal", "At most"),
    "seg.f.purchase": _t("Pembelian terakhir", "Last purchase"),
    "seg.f.within_days": _t("Dalam N hari terakhir", "Within the last N days"),
    "seg.f.before_days": _t("Sudah lebih dari N hari", "More than N days ago"),
    "seg.f.consent": _t("Izin pemasaran", "Marketing consent"),
    "seg.f.consent_any": _t("Semua (siaran tetap hanya ke yang memberi izin)",
                            "Everyone (a broadcast still goes only to those who consented)"),
    "seg.f.consent_marketing": _t("Hanya yang boleh menerima pemasaran sekarang",
                                  "Only those who may get marketing now"),
    "seg.rfm.champions": _t("Juara", "Champions"),
    "seg.rfm.loyal": _t("Setia", "Loyal"),
    "seg.rfm.potential": _t("Potensial", "Potential"),
    "seg.rfm.new": _t("Baru", "New"),
    "seg.rfm.needs_attention": _t("Perlu perhatian", "Needs attention"),
    "seg.rfm.at_risk": _t("Berisiko", "At risk"),
    "seg.rfm.hibernating": _t("Tidur", "Hibernating"),
    "seg.rfm.prospect": _t("Prospek", "Prospect"),
    "seg.rfm.inactive": _t("Tidak aktif", "Inactive"),
})

texts({
    # the composer
    "bc.not_created": _t("Siaran belum dibuat:", "Broadcast not created:"),
    "bc.step.name": _t("Nama", "Name"),
    "bc.step.who": _t("Siapa yang menerima", "Who gets it"),
    "bc.step.text": _t("Teks per bahasa", "Text per language"),
    "bc.step.channels": _t("Kanal, urut pilihan", "Channels, in preference order"),
    "bc.step.rules": _t("Aturan pengiriman", "Sending rules"),
    "bc.name": _t("Nama siaran (untuk tim, tidak terlihat pelanggan)", "Broadcast name (for the team; customers do "
                                                                         "not see it)"),
    "bc.segment": _t("Segmen", "Segment"),
    "bc.segment_filters": _t("— pakai filter di bawah —", "— use the filters below —"),
    "bc.filters_here": _t("Atau pilih dengan filter", "Or choose with filters"),
    "bc.filters_hint": _t("Dipakai bila tidak ada segmen tersimpan yang dipilih. Tanpa filter: semua pelanggan.",
                          "Used when no saved segment is chosen. No filters: every customer."),
    "bc.variables": _t("Variabel:", "Variables:"),
    "bc.opt_out_added": _t("Baris cara berhenti (STOP) ditambahkan otomatis.", "The opt-out (STOP) line is added "
                                                                               "automatically."),
    "bc.text_in": _t("Teks {lang}", "Text {lang}"),
    "bc.required": _t("wajib", "required"),
    "bc.channels_hint": _t("Setiap pelanggan menerima lewat kanal pertama yang menjangkaunya.",
                           "Each customer gets it on the first channel that reaches them."),
    "bc.choice": _t("Pilihan {n}", "Choice {n}"),
    "bc.next_step": _t("Setelah dibuat: pratinjau penerima, tampilan di tiap kanal, kirim uji, lalu jadwalkan.",
                       "Once created: the recipients preview, how it looks on each channel, a test, then the "
                       "schedule."),
    "bc.create": _t("Buat draf", "Create draft"),
    # rules
    "bc.rules": _t("Aturan yang berlaku", "Rules that apply"),
    "bc.rules.quiet": _t("Jam tenang {start}–{end} di zona waktu pelanggan: pesan menunggu sampai {end}.",
                         "Quiet hours {start}–{end} in the customer's time zone: messages wait until {end}."),
    "bc.rules.no_quiet": _t("Tidak ada jam tenang.", "No quiet hours."),
    "bc.rules.cap": _t("Batas frekuensi: maks. {n} siaran per pelanggan dalam {days} hari (selebihnya dilewati).",
                       "Frequency cap: at most {n} broadcasts per customer within {days} days (the rest are "
                       "skipped)."),
    "bc.rules.rate": _t("Kecepatan kirim:", "Sending rate:"),
    "bc.rules.minutes": _t("mnt", "min"),
    "bc.rules.consent": _t("Hanya pelanggan dengan izin pemasaran; STOP diperiksa lagi saat setiap pesan diantrekan.",
                           "Only customers with marketing consent; STOP is checked again as each message is queued."),
    # one broadcast
    "bc.languages": _t("Bahasa", "Languages"),
    "bc.created": _t("Dibuat", "Created"),
    "bc.scheduled_for": _t("Dijadwalkan", "Scheduled for"),
    "bc.before": _t("Sebelum mengirim", "Before sending"),
    "bc.would_receive": _t("akan menerima bila dipilih sekarang", "would receive it if chosen now"),
    "bc.of_match": _t("dari {n} yang cocok", "of {n} who match"),
    "bc.per_channel": _t("Per kanal", "Per channel"),
    "bc.skipped_by_reason": _t("Dilewati, menurut alasan", "Skipped, by reason"),
    "bc.nobody_skipped": _t("Tidak ada yang dilewati.", "Nobody skipped."),
    "bc.held_until": _t("Waktu kirim jatuh di jam tenang: pelanggan di zona waktu perusahaan menerimanya mulai {t}.",
                        "The send time falls in quiet hours: customers in the company's time zone get it from {t}."),
    "bc.looks": _t("Tampilan bagi pelanggan", "As the customer sees it"),
    "bc.looks_hint": _t("Dengan data contoh pelanggan pertama yang cocok.", "With the first matching customer's data."),
    "bc.in_language": _t("Bahasa {lang}", "In {lang}"),
    "bc.window_open": _t("dalam 24 jam sejak pesan terakhir pelanggan", "within 24 hours of the customer's last "
                                                                         "message"),
    "bc.window_closed": _t("di luar jendela 24 jam: templat yang disetujui", "outside the 24-hour window: the "
                                                                            "approved template"),
    "bc.template": _t("Templat WhatsApp {sid}, diisi:", "WhatsApp template {sid}, filled in:"),
    "bc.template_hint": _t("Kata-kata templat adalah yang disetujui di Twilio; Sapa mengisi variabelnya.",
                           "The template's wording is the one approved in Twilio; Sapa fills its variables."),
    "bc.no_template": _t("Tidak ada templat WhatsApp 'broadcast' yang disetujui untuk {lang}: pelanggan WhatsApp di "
                         "luar jendela 24 jam tidak akan menerimanya (gagal). Tambahkan di "
                         "channels.whatsapp.templates.",
                         "No approved WhatsApp 'broadcast' template for {lang}: WhatsApp customers outside the 24-hour "
                         "window will not get it (failed). Add one under channels.whatsapp.templates."),
    "bc.sms_parts": _t("{n} bagian SMS", "{n} SMS part(s)"),
    "bc.test": _t("Kirim uji ke diri sendiri", "Send yourself a test"),
    "bc.test_hint": _t("Ke nomor atau chat id Anda sendiri; tidak dihitung sebagai penerima.",
                       "To your own number or chat id; not counted as a recipient."),
    "bc.test_channel": _t("Kanal", "Channel"),
    "bc.test_to": _t("Nomor Anda (WhatsApp, SMS) atau chat id Telegram", "Your number (WhatsApp, SMS) or Telegram "
                                                                          "chat id"),
    "bc.test_language": _t("Bahasa", "Language"),
    "bc.test_send": _t("Kirim uji", "Send test"),
    "bc.schedule": _t("Jadwalkan", "Schedule"),
    "bc.schedule_at": _t("Tanggal dan jam ({tz})", "Date and time ({tz})"),
    "bc.schedule_button": _t("Jadwalkan", "Schedule"),
    "bc.send_now": _t("Kirim sekarang", "Send now"),
    "bc.discard": _t("Buang draf", "Discard draft"),
    "bc.progress": _t("Kemajuan", "Progress"),
    "bc.outstanding": _t("{n} belum selesai", "{n} outstanding"),
    "bc.started": _t("mulai {t}", "started {t}"),
    "bc.finished": _t("selesai {t}", "finished {t}"),
    "bc.waiting_schedule": _t("Menunggu waktu yang dijadwalkan; penerima dipilih saat itu.",
                              "Waiting for its time; recipients are chosen then."),
    "bc.paused_note": _t("Dijeda: {n} pesan menunggu di antrean.", "Paused: {n} messages wait in the queue."),
    "bc.quiet_wait": _t("Sebagian penerima menunggu jam tenang berakhir ({t}).",
                        "Some recipients wait for quiet hours to end ({t})."),
    "bc.failed_by_reason": _t("Gagal, menurut alasan", "Failed, by reason"),
    "bc.pause": _t("Jeda", "Pause"),
    "bc.resume": _t("Lanjutkan", "Resume"),
    "bc.cancel": _t("Batalkan", "Cancel"),
    "bc.cancel_confirm": _t("Batalkan siaran ini? Pesan yang belum terkirim ditarik.",
                            "Cancel this broadcast? Messages not sent yet are withdrawn."),
    "bc.recipients": _t("Penerima", "Recipients"),
    "bc.export_csv": _t("Ekspor CSV", "Export CSV"),
    "bc.export_xlsx": _t("Ekspor XLSX", "Export XLSX"),
    "bc.k.recipients": _t("penerima", "recipients"),
    "bc.k.sent": _t("terkirim", "sent"),
    "bc.k.sent_only": _t("terkirim (belum sampai)", "sent (not delivered yet)"),
    "bc.k.delivered": _t("sampai", "delivered"),
    "bc.k.delivered_only": _t("sampai (belum dibaca)", "delivered (not read)"),
    "bc.k.read": _t("dibaca", "read"),
    "bc.k.failed": _t("gagal", "failed"),
    "bc.k.pending": _t("belum terkirim", "not sent yet"),
    "bc.k.skipped": _t("dilewati", "skipped"),
    "bc.k.replies": _t("membalas dalam {h} jam", "replied within {h} h"),
    "bc.k.replies_short": _t("membalas", "replied"),
    "bc.k.opt_outs": _t("berhenti berlangganan", "opted out"),
    "bc.k.redemptions": _t("penukaran ({n} pelanggan)", "redemptions ({n} customers)"),
    "bc.k.redemptions_short": _t("penukaran", "redemptions"),
    # recipients
    "bc.recipients_hint": _t("Nama, kanal dan hasil tiap penerima. Alamat dan percakapan tidak ditampilkan.",
                             "Each recipient's name, channel and outcome. Addresses and conversations are not shown."),
    "bc.outcome": _t("Hasil", "Outcome"),
    "bc.all": _t("Semua", "All"),
    "bc.customer": _t("Pelanggan", "Customer"),
    "bc.language": _t("Bahasa", "Language"),
    "bc.reason": _t("Alasan", "Reason"),
    "bc.sent_at": _t("Terkirim", "Sent at"),
    "bc.no_recipients": _t("Tidak ada penerima dengan pilihan ini.", "No recipients with these choices."),
    "bc.o.waiting": _t("menunggu", "waiting"),
    "bc.o.skipped": _t("dilewati", "skipped"),
    "bc.o.pending": _t("di antrean", "in the queue"),
    "bc.o.paused": _t("dijeda", "paused"),
    "bc.o.sent": _t("terkirim", "sent"),
    "bc.o.delivered": _t("sampai", "delivered"),
    "bc.o.read": _t("dibaca", "read"),
    "bc.o.failed": _t("gagal", "failed"),
    "bc.reason.opted_out": _t("berhenti berlangganan (STOP)", "opted out (STOP)"),
    "bc.reason.no_consent": _t("tanpa izin pemasaran", "no marketing consent"),
    "bc.reason.frequency_cap": _t("batas frekuensi", "frequency cap"),
    "bc.reason.no_channel": _t("tanpa kanal yang terjangkau", "no reachable channel"),
    "bc.reason.cancelled": _t("siaran dibatalkan", "broadcast cancelled"),
    "bc.status.draft": _t("draf", "draft"),
    "bc.status.scheduled": _t("terjadwal", "scheduled"),
    "bc.status.selecting": _t("memilih penerima", "choosing recipients"),
    "bc.status.sending": _t("mengirim", "sending"),
    "bc.status.paused": _t("dijeda", "paused"),
    "bc.status.cancelled": _t("dibatalkan", "cancelled"),
    "bc.status.done": _t("selesai", "done"),
})

texts({
    "loy.title": _t("Program loyalitas", "Loyalty programme"),
    "loy.export": _t("Unduh laporan program periode ini:", "Download this period's programme report:"),
    "loy.bad_period": _t("Periode tidak dipakai:", "Period not used:"),
    "loy.disabled": _t("Program loyalitas dimatikan di konfigurasi (loyalty.enabled).",
                       "The loyalty programme is switched off in the configuration (loyalty.enabled)."),
    "loy.from": _t("Dari", "From"),
    "loy.to": _t("Sampai", "To"),
    "loy.period": _t("Periode {now}, dibandingkan dengan {before}.", "Period {now}, compared with {before}."),
    "loy.before": _t("sebelumnya {n}", "before: {n}"),
    "loy.k.members": _t("anggota", "members"),
    "loy.members": _t("Anggota", "Members"),
    "loy.k.new_members": _t("anggota baru", "new members"),
    "loy.k.active": _t("pelanggan aktif", "active customers"),
    "loy.k.earned": _t("poin diperoleh", "points earned"),
    "loy.k.redeemed": _t("poin ditukar", "points redeemed"),
    "loy.k.expired": _t("poin kedaluwarsa", "points expired"),
    "loy.k.redemptions": _t("penukaran", "redemptions"),
    "loy.k.rate": _t("tingkat penukaran", "redemption rate"),
    "loy.findings": _t("Temuan", "Findings"),
    "loy.chart.points": _t("Poin: periode ini dan sebelumnya", "Points: this period and the one before"),
    "loy.chart.tiers": _t("Anggota per tingkat (saat ini)", "Members per tier (now)"),
    "loy.chart.segments": _t("Poin per segmen RFM", "Points per RFM segment"),
    "loy.chart.broadcasts": _t("Siaran dalam periode ini", "Broadcasts in this period"),
    "loy.table": _t("Tabel angka", "Table of the numbers"),
    "loy.points": _t("Poin", "Points"),
    "loy.this_period": _t("Periode ini", "This period"),
    "loy.previous_period": _t("Periode sebelumnya", "Previous period"),
    "loy.tier": _t("Tingkat", "Tier"),
    "loy.segment": _t("Segmen", "Segment"),
    "loy.tiers": _t("Tingkat", "Tiers"),
    "loy.rules": _t("1 poin per Rp {rp}; tingkat dari poin {days} hari terakhir; poin kedaluwarsa setelah {months} "
                    "bulan (0: tidak pernah).",
                    "1 point per Rp {rp}; tiers from the points of the last {days} days; points expire after "
                    "{months} months (0: never)."),
    "loy.min_points": _t("Poin minimal", "Minimum points"),
    "loy.multiplier": _t("Pengali poin", "Points multiplier"),
    "loy.benefits": _t("Manfaat", "Benefits"),
    "loy.rewards": _t("Katalog hadiah", "Rewards catalogue"),
    "loy.reward": _t("Hadiah", "Reward"),
    "loy.cost": _t("Poin", "Points"),
    "loy.min_tier": _t("Tingkat minimal", "Lowest tier"),
    "loy.all_tiers": _t("semua", "all"),
    "loy.redeemed_count": _t("Ditukar", "Redeemed"),
    "loy.stock": _t("Stok", "Stock"),
    "loy.stock_of": _t("Stok {code}", "Stock of {code}"),
    "loy.set_stock": _t("Simpan", "Save"),
    "loy.disable": _t("Berhenti tawarkan", "Stop offering"),
    "loy.enable": _t("Tawarkan lagi", "Offer again"),
    "loy.inactive": _t("tidak ditawarkan", "not offered"),
    "loy.out_of_stock": _t("habis", "out of stock"),
    "loy.stock_hint": _t("Stok kosong berarti tidak terbatas. Setiap perubahan tercatat di log audit.",
                         "A blank stock means unlimited. Every change is in the audit log."),
    "loy.no_rewards": _t("Belum ada hadiah di katalog.", "No rewards in the catalogue yet."),
})
