"""A customer's record in the console (profile, channels, VIP, consents with their evidence, loyalty, tickets,
possible duplicates) and what the allowed roles do with it: edit, merge, export, erase. Tickets list and detail.

Personal data: every view is audited (`customer.viewed`, `ticket.viewed`), every change too, with the staff
member as actor (`agent:<id>`), the same rows the CLI and Slack write.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from bot.console import auth
from bot.console.auth import StaffUser, sapa_of
from bot.console.views import countdown, local_time
from bot.console.web import back, outcome_notice, page, path_id, texts
from bot.contacts import normalise_email
from bot.limits import parse_id
from handlers import desk, vip
from handlers.permissions import can
from store import loyalty
from store.audit import record
from store.duplicates import duplicates_of
from store.merge import merge_customers
from store.models import Agent, ChannelIdentity, Consent, Conversation, Customer, Ticket, TicketEvent
from store.privacy import erase_customer, export_customer

PROFILE_LANGUAGES = ("id", "en")
TICKET_STATUSES = ("open", "in_progress", "reopened", "resolved", "closed")
TICKETS_PER_PAGE = 50


# Who may call a route: the signed-in staff member, checked for the permission (and CSRF on POST).
CustomerReader = Annotated[StaffUser, Depends(auth.require("customer.read"))]
CustomerEditor = Annotated[StaffUser, Depends(auth.require("customer.edit"))]
CustomerMerger = Annotated[StaffUser, Depends(auth.require("customer.merge"))]
CustomerExporter = Annotated[StaffUser, Depends(auth.require("customer.export"))]
CustomerEraser = Annotated[StaffUser, Depends(auth.require("customer.erase"))]
VipManager = Annotated[StaffUser, Depends(auth.require("vip.manage"))]
TicketReader = Annotated[StaffUser, Depends(auth.require("tickets.view"))]


def mount(app: FastAPI) -> None:
    routes = APIRouter(prefix="/console", include_in_schema=False)  # pages, not the API
    routes.add_api_route("/customers/{customer_id}", customer_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/customers/{customer_id}/profile", edit_profile, methods=["POST"])
    routes.add_api_route("/customers/{customer_id}/merge", merge, methods=["POST"])
    routes.add_api_route("/customers/{customer_id}/export", export, methods=["POST"])
    routes.add_api_route("/customers/{customer_id}/erase", erase, methods=["POST"])
    routes.add_api_route("/customers/{customer_id}/vip", set_vip, methods=["POST"])
    routes.add_api_route("/tickets", tickets_page, methods=["GET"], response_class=HTMLResponse)
    routes.add_api_route("/tickets/{ticket_id}", ticket_page, methods=["GET"], response_class=HTMLResponse)
    app.include_router(routes)


OUTCOMES = {"saved": "ok", "merged": "ok", "erased": "ok", "invalid": "error", "refused": "error"}


def _notice(request: Request) -> dict[str, str] | None:
    return outcome_notice(request, OUTCOMES, "cust.outcome.")


# --- the customer --------------------------------------------------------------------------------------------------

def customer_page(customer_id: str, request: Request, staff: CustomerReader) -> HTMLResponse:
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    ident = path_id(customer_id, "customer")
    with sapa.database.unit_of_work() as session:
        customer = session.get(Customer, ident)
        if customer is None:
            raise HTTPException(404, "no such customer")
        identities = list(session.execute(select(ChannelIdentity).where(ChannelIdentity.customer_id == ident)
                                          .order_by(ChannelIdentity.id)).scalars())
        consents = list(session.execute(select(Consent).where(Consent.customer_id == ident)
                                        .order_by(Consent.id.desc()).limit(50)).scalars())
        current: dict[str, Consent] = {}
        for consent in consents:  # newest first: the first of each purpose is the one in force
            current.setdefault(consent.purpose, consent)
        tickets = list(session.execute(select(Ticket).where(Ticket.customer_id == ident)
                                       .order_by(Ticket.id.desc()).limit(30)).scalars())
        events = {t.id: list(session.execute(select(TicketEvent).where(TicketEvent.ticket_id == t.id)
                                             .order_by(TicketEvent.id)).scalars()) for t in tickets[:10]}
        conversations = list(session.execute(select(Conversation).where(Conversation.customer_id == ident)
                                             .order_by(Conversation.id.desc()).limit(20)).scalars())
        manager = session.get(Agent, customer.account_manager_id) if customer.account_manager_id else None
        balance = None
        if settings.loyalty.enabled:
            balance = loyalty.summary(session, settings, ident, now)
        duplicates = duplicates_of(session, ident) if not customer.merged_into_id else []
        record(session, actor=f"agent:{staff.id}", action="customer.viewed", subject_type="customer",
               subject_id=ident, now=now, detail={"via": "console"})
        context: dict[str, Any] = {
            "customer": customer, "identities": identities, "consents": consents, "current_consents": current,
            "tickets": [{"ticket": t, "ref": desk.ticket_reference(t.id), "events": events.get(t.id, []),
                         "opened": local_time(settings, t.created_at),
                         "due": countdown(t.resolution_due_at, now) if t.status in desk.OPEN_TICKET else None}
                        for t in tickets],
            "conversations": conversations, "manager": manager, "loyalty": balance, "duplicates": duplicates,
            "local": lambda moment: local_time(settings, moment),
            "can_edit": can(staff.role, "customer.edit"), "can_merge": can(staff.role, "customer.merge"),
            "can_export": can(staff.role, "customer.export"), "can_erase": can(staff.role, "customer.erase"),
            "can_vip": can(staff.role, "vip.manage"),
            "can_read_conversations": can(staff.role, "conversation.read"), "languages": PROFILE_LANGUAGES,
        }
    return page(request, "customer.html", staff=staff, csrf_token=staff.csrf_token, active="inbox",
                notice=_notice(request), **context)


def edit_profile(customer_id: str, request: Request, staff: CustomerEditor, name: str = Form(""), email: str = Form(""),
                 language_code: str = Form("", alias="language")) -> Response:
    ident = path_id(customer_id, "customer")
    path = f"/console/customers/{ident}"
    name, email = name.strip(), email.strip()
    if len(name) > 200:
        return back(path, "invalid", "name: 200 characters at most")
    normalised = normalise_email(email) if email else None
    if email and normalised is None:
        return back(path, "invalid", "email: not an email address")
    if language_code and language_code not in PROFILE_LANGUAGES:
        return back(path, "invalid", "language: id or en")
    sapa = sapa_of(request)
    now = sapa.clock.now()
    with sapa.database.unit_of_work() as session:
        customer = session.get(Customer, ident)
        if customer is None:
            raise HTTPException(404, "no such customer")
        wanted = {"name": name or None, "email": normalised, "language": language_code or customer.language}
        changed = [field for field, value in wanted.items() if getattr(customer, field) != value]
        for field in changed:
            setattr(customer, field, wanted[field])
        if changed:
            customer.updated_at = now
            # Which fields changed, never their values: the audit log must not become a copy of personal data.
            record(session, actor=f"agent:{staff.id}", action="customer.update", subject_type="customer",
                   subject_id=ident, now=now, detail={"fields": changed, "via": "console"})
    return back(path, "saved")


def merge(customer_id: str, request: Request, staff: CustomerMerger, keep_id: str = Form(...),
          reason: str = Form("")) -> Response:
    """Fold this customer (the duplicate) into `keep_id`, the record to keep."""
    ident = path_id(customer_id, "customer")
    target = parse_id(keep_id)
    path = f"/console/customers/{ident}"
    if target is None or target == ident:
        return back(path, "invalid", "choose another customer to keep")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        source, keep = session.get(Customer, ident), session.get(Customer, target)
        if source is None or keep is None or source.merged_into_id or keep.merged_into_id:
            return back(path, "refused", "one of the two records does not exist or was already merged")
        merge_customers(session, ident, target, now=sapa.clock.now(), actor=f"agent:{staff.id}",
                        reason=reason.strip()[:300] or "merged in the console")
    return back(f"/console/customers/{target}", "merged")


def export(customer_id: str, request: Request, staff: CustomerExporter) -> Response:
    """A full copy of what Sapa holds about the customer (a data-protection access request), as JSON."""
    ident = path_id(customer_id, "customer")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        if session.get(Customer, ident) is None:
            raise HTTPException(404, "no such customer")
        data = export_customer(session, ident)
        record(session, actor=f"agent:{staff.id}", action="customer.exported", subject_type="customer",
               subject_id=ident, now=sapa.clock.now(), detail={"via": "console"})
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{ident}.json"', "Cache-Control": "no-store"})


def erase(customer_id: str, request: Request, staff: CustomerEraser, reason: str = Form(""),
          confirm: str = Form("")) -> Response:
    ident = path_id(customer_id, "customer")
    path = f"/console/customers/{ident}"
    if confirm.strip() != str(ident):
        return back(path, "invalid", f"type the customer number {ident} to confirm the erasure")
    if not reason.strip():
        return back(path, "invalid", "say why (e.g. the request's reference); it is kept in the audit log")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        if session.get(Customer, ident) is None:
            raise HTTPException(404, "no such customer")
        erase_customer(session, ident, now=sapa.clock.now(), actor=f"agent:{staff.id}", reason=reason.strip()[:300])
    return back(path, "erased")


def set_vip(customer_id: str, request: Request, staff: VipManager, change: str = Form(""),
            reason: str = Form("")) -> Response:
    """Make a customer a VIP by hand (tier `strategic`, which the rules never undo) or take it away, with a reason."""
    ident = path_id(customer_id, "customer")
    path = f"/console/customers/{ident}"
    if change not in ("add", "remove"):
        return back(path, "invalid", "change: add or remove")
    if not reason.strip():
        return back(path, "invalid", "say why; it is kept as the VIP reason and in the audit log")
    sapa = sapa_of(request)
    with sapa.database.unit_of_work() as session:
        customer = session.get(Customer, ident)
        if customer is None or customer.merged_into_id:
            raise HTTPException(404, "no such customer")
        vip.set_by_hand(session, customer, session.get_one(Agent, staff.id), add=change == "add",
                        reason=reason.strip()[:300], now=sapa.clock.now())
    return back(path, "saved")


# --- tickets -------------------------------------------------------------------------------------------------------

def tickets_page(request: Request, staff: TicketReader) -> HTMLResponse:
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    status = request.query_params.get("status") or ""
    kind = request.query_params.get("kind") or ""
    if status and status not in TICKET_STATUSES:
        raise HTTPException(400, f"unknown status {status!r}")
    if kind and kind not in ("complaint", "request"):
        raise HTTPException(400, f"unknown kind {kind!r}")
    before = parse_id(request.query_params.get("before") or "") if request.query_params.get("before") else None
    query = select(Ticket, Customer).join(Customer, Customer.id == Ticket.customer_id)
    count = select(func.count()).select_from(Ticket)
    if status:
        query, count = query.where(Ticket.status == status), count.where(Ticket.status == status)
    if kind:
        query, count = query.where(Ticket.kind == kind), count.where(Ticket.kind == kind)
    if before is not None:
        query = query.where(Ticket.id < before)
    with sapa.database.unit_of_work() as session:
        rows = session.execute(query.order_by(Ticket.id.desc()).limit(TICKETS_PER_PAGE + 1)).all()
        total = session.execute(count).scalar_one()
        record(session, actor=f"agent:{staff.id}", action="tickets.viewed", subject_type="tickets", subject_id=None,
               now=now, detail={"status": status, "kind": kind})
    more = len(rows) > TICKETS_PER_PAGE
    rows = rows[:TICKETS_PER_PAGE]
    items = [{"ticket": t, "customer": c, "ref": desk.ticket_reference(t.id),
              "opened": local_time(settings, t.created_at),
              "due": countdown(t.resolution_due_at, now) if t.status in desk.OPEN_TICKET else None} for t, c in rows]
    kept = {key: value for key, value in (("status", status), ("kind", kind)) if value}
    next_url = f"/console/tickets?{urlencode({**kept, 'before': rows[-1][0].id})}" if more and rows else None
    return page(request, "tickets.html", staff=staff, csrf_token=staff.csrf_token, active="tickets", items=items,
                total=total, status=status, kind=kind, statuses=TICKET_STATUSES, next_url=next_url)


def ticket_page(ticket_id: str, request: Request, staff: TicketReader) -> HTMLResponse:
    sapa = sapa_of(request)
    settings, now = sapa.settings, sapa.clock.now()
    ident = path_id(ticket_id, "ticket")
    with sapa.database.unit_of_work() as session:
        ticket = session.get(Ticket, ident)
        if ticket is None:
            raise HTTPException(404, "no such ticket")
        customer = session.get_one(Customer, ticket.customer_id)
        events = list(session.execute(select(TicketEvent).where(TicketEvent.ticket_id == ident)
                                      .order_by(TicketEvent.id)).scalars())
        agent_ids = {e.agent_id for e in events if e.agent_id} | ({ticket.assigned_agent_id} - {None})
        agents = {a.id: a.name for a in session.execute(select(Agent).where(Agent.id.in_(agent_ids))).scalars()} \
            if agent_ids else {}
        record(session, actor=f"agent:{staff.id}", action="ticket.viewed", subject_type="ticket", subject_id=ident,
               now=now, detail={"customer_id": customer.id})
    return page(request, "ticket.html", staff=staff, csrf_token=staff.csrf_token, active="tickets", ticket=ticket,
                customer=customer, events=events, agents=agents, ref=desk.ticket_reference(ident),
                local=lambda moment: local_time(settings, moment),
                first_due=countdown(ticket.first_response_due_at, now) if not ticket.first_responded_at else None,
                due=countdown(ticket.resolution_due_at, now) if ticket.status in desk.OPEN_TICKET else None,
                can_customer=can(staff.role, "customer.read"),
                can_conversation=can(staff.role, "conversation.read"))


texts({
    "cust.title": {"id": "Pelanggan", "en": "Customer"},
    "cust.name": {"id": "Nama", "en": "Name"},
    "cust.phone": {"id": "Telepon", "en": "Phone"},
    "cust.email": {"id": "Email", "en": "Email"},
    "cust.language": {"id": "Bahasa", "en": "Language"},
    "cust.since": {"id": "Pelanggan sejak", "en": "Customer since"},
    "cust.source": {"id": "Sumber", "en": "Source"},
    "cust.manager": {"id": "Account manager", "en": "Account manager"},
    "cust.channels": {"id": "Kanal", "en": "Channels"},
    # A web chat "address" is the browser session's id: the only key to that chat. Never shown.
    "cust.browser_session": {"id": "sesi browser", "en": "browser session"},
    "cust.unreachable": {"id": "tidak terjangkau", "en": "unreachable"},
    "cust.vip": {"id": "VIP", "en": "VIP"},
    "cust.not_vip": {"id": "Bukan VIP", "en": "Not a VIP"},
    "cust.vip_since": {"id": "sejak {t}", "en": "since {t}"},
    "cust.consents": {"id": "Persetujuan", "en": "Consents"},
    "cust.consent_given": {"id": "diberikan", "en": "given"},
    "cust.consent_refused": {"id": "ditolak/ditarik", "en": "refused or withdrawn"},
    "cust.no_consent": {"id": "Belum ada persetujuan tercatat.", "en": "No consent recorded yet."},
    "cust.evidence": {"id": "Bukti", "en": "Evidence"},
    "cust.history": {"id": "Riwayat persetujuan", "en": "Consent history"},
    "cust.loyalty": {"id": "Loyalitas", "en": "Loyalty"},
    "cust.points": {"id": "{n} poin · tier {tier}", "en": "{n} points · {tier} tier"},
    "cust.tickets": {"id": "Tiket", "en": "Tickets"},
    "cust.no_tickets": {"id": "Belum ada tiket.", "en": "No tickets yet."},
    "cust.conversations": {"id": "Percakapan", "en": "Conversations"},
    "cust.duplicates": {"id": "Kemungkinan duplikat", "en": "Possible duplicates"},
    "cust.no_duplicates": {"id": "Tidak ada yang mirip.", "en": "No look-alikes."},
    "cust.merge_into": {"id": "Gabungkan ke #{id} (simpan yang itu)", "en": "Merge into #{id} (keep that one)"},
    "cust.vip_add": {"id": "Jadikan VIP", "en": "Make VIP"},
    "cust.vip_remove": {"id": "Cabut status VIP", "en": "Remove VIP status"},
    "cust.vip_reason": {"id": "Alasan (disimpan)", "en": "Reason (kept)"},
    "cust.edit": {"id": "Ubah profil", "en": "Edit profile"},
    "cust.save": {"id": "Simpan", "en": "Save"},
    "cust.export": {"id": "Ekspor data (JSON)", "en": "Export data (JSON)"},
    "cust.erase": {"id": "Hapus data pribadi", "en": "Erase personal data"},
    "cust.erase_reason": {"id": "Alasan / referensi permintaan", "en": "Reason / request reference"},
    "cust.erase_confirm": {"id": "Ketik nomor pelanggan ({id}) untuk konfirmasi",
                           "en": "Type the customer number ({id}) to confirm"},
    "cust.erase_warning": {"id": "Nama, kontak, dan isi pesan dihapus permanen. Statistik tetap.",
                           "en": "Name, contacts and message texts are removed for good. Statistics stay."},
    "cust.merged": {"id": "Data ini sudah digabung ke #{id}.", "en": "This record was merged into #{id}."},
    "cust.outcome.saved": {"id": "Tersimpan.", "en": "Saved."},
    "cust.outcome.merged": {"id": "Digabungkan.", "en": "Merged."},
    "cust.outcome.erased": {"id": "Data pribadi dihapus.", "en": "Personal data erased."},
    "cust.outcome.invalid": {"id": "Periksa isian:", "en": "Check the form:"},
    "cust.outcome.refused": {"id": "Tidak dilakukan:", "en": "Not done:"},
    "event.opened": {"id": "dibuka", "en": "opened"},
    "event.assigned": {"id": "ditugaskan", "en": "assigned"},
    "event.escalated": {"id": "dieskalasi", "en": "escalated"},
    "event.resolved": {"id": "diselesaikan", "en": "resolved"},
    "event.reopened": {"id": "dibuka lagi", "en": "reopened"},
    "event.confirmation_asked": {"id": "konfirmasi ditanyakan", "en": "confirmation asked"},
    "event.confirmed": {"id": "dikonfirmasi", "en": "confirmed"},
    "tickets.title": {"id": "Tiket", "en": "Tickets"},
    "tickets.count": {"id": "{n} tiket", "en": "{n} tickets"},
    "tickets.any_status": {"id": "Semua status", "en": "Any status"},
    "tickets.any_kind": {"id": "Semua jenis", "en": "Any kind"},
    "tickets.kind": {"id": "Jenis", "en": "Kind"},
    "tickets.complaint": {"id": "Keluhan", "en": "Complaint"},
    "tickets.request": {"id": "Permintaan", "en": "Request"},
    "tickets.category": {"id": "Kategori", "en": "Category"},
    "tickets.root_cause": {"id": "Akar masalah", "en": "Root cause"},
    "tickets.priority": {"id": "Prioritas", "en": "Priority"},
    "tickets.escalation": {"id": "Level eskalasi", "en": "Escalation level"},
    "tickets.assigned": {"id": "Ditangani", "en": "Assigned to"},
    "tickets.first_due": {"id": "Respons pertama", "en": "First response"},
    "tickets.resolution_due": {"id": "Penyelesaian", "en": "Resolution"},
    "tickets.opened": {"id": "Dibuka", "en": "Opened"},
    "tickets.resolved": {"id": "Selesai", "en": "Resolved"},
    "tickets.events": {"id": "Riwayat", "en": "Events"},
    "tickets.more": {"id": "Berikutnya", "en": "Next page"},
    "tickets.none": {"id": "Tidak ada tiket.", "en": "No tickets."},
    "tickets.subject": {"id": "Perihal", "en": "Subject"},
    "tickets.customer": {"id": "Pelanggan", "en": "Customer"},
    "tickets.status": {"id": "Status", "en": "Status"},
    "tickets.responded": {"id": "dijawab {t}", "en": "answered {t}"},
})
