"""Staff accounts and their access: who works in Sapa, signed-in browsers, one-time links, failed sign-ins.

Query functions take a session and never commit. Secrets are never stored: a session's cookie token and a one-time
link's token are kept only as their SHA-256, so a copy of the tables signs nobody in. Password hashing (Argon2id)
and the role table live above the store (bot/console/auth.py, handlers/permissions.py): callers pass the hash, and
the roles a new member of staff may have, because `store` imports no other project package.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.audit import record
from store.models import Agent, LoginFailure, StaffSession, StaffToken

TokenPurpose = Literal["setup", "reset"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")  # the same shape config.yml's slack.agents accept


class StaffError(ValueError):
    """A request the store refuses: `code` names the problem for an interface to word in its language (name, email,
    role, slack_user_id, duplicate_email, duplicate_slack_user_id); the message is the English wording."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalise_email(email: str) -> str:
    return email.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- staff -------------------------------------------------------------------------------------------------------


def create_staff(session: Session, *, name: str, email: str, role: str, roles: Collection[str], now: datetime,
                 slack_user_id: str | None = None, password_hash: str | None = None) -> Agent:
    """A new, active member of staff. `roles` are the roles that exist (handlers.permissions.ROLES)."""
    name, email = name.strip(), normalise_email(email)
    if not name or len(name) > 200:
        raise StaffError("name", "a name of 1 to 200 characters is needed")
    if len(email) > 320 or not _EMAIL.match(email):
        raise StaffError("email", f"{email!r} is not an email address")
    if role not in roles:
        raise StaffError("role", f"unknown role {role!r}; use one of {', '.join(roles)}")
    if slack_user_id is not None and not _SLACK_USER.match(slack_user_id):
        raise StaffError("slack_user_id", f"{slack_user_id!r} is not a Slack user id such as U0123ABCD")
    if find_by_email(session, email) is not None:
        raise StaffError("duplicate_email", f"a member of staff already has the email {email}")
    if slack_user_id is not None and session.execute(
            select(Agent.id).where(Agent.slack_user_id == slack_user_id)).first() is not None:
        raise StaffError("duplicate_slack_user_id", f"a member of staff already has the Slack user id {slack_user_id}")
    staff = Agent(name=name, email=email, role=role, slack_user_id=slack_user_id, active=True, created_at=now,
                  password_hash=password_hash, password_changed_at=now if password_hash else None)
    try:
        with session.begin_nested():  # a racing insert of the same email loses here, not at commit
            session.add(staff)
    except IntegrityError:
        raise StaffError("duplicate_email", f"a member of staff already has the email {email}") from None
    return staff


def find_by_email(session: Session, email: str) -> Agent | None:
    return session.execute(select(Agent).where(Agent.email == normalise_email(email))).scalar_one_or_none()


def find_by_id(session: Session, staff_id: int) -> Agent | None:
    return session.get(Agent, staff_id)


def list_staff(session: Session) -> list[Agent]:
    """Everyone, active first, then by name."""
    return list(session.execute(select(Agent).order_by(Agent.active.desc(), Agent.name, Agent.id)).scalars())


def disable_staff(session: Session, staff: Agent) -> int:
    """No more sign-ins or actions; their browsers are signed out at once. Returns the sessions ended."""
    staff.active = False
    return end_sessions(session, staff.id)


def set_password_hash(session: Session, staff: Agent, password_hash: str | None, *, now: datetime) -> None:
    """A new hash (None: the old password stops working and none replaces it until a reset link is used)."""
    staff.password_hash = password_hash
    staff.password_changed_at = now


def admin_can_sign_in(session: Session) -> bool:
    """Whether some active admin has a password, i.e. someone can manage staff from the console."""
    found = session.execute(select(Agent.id).where(Agent.role == "admin", Agent.active.is_(True),
                                                   Agent.password_hash.is_not(None)).limit(1)).first()
    return found is not None


# --- sessions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    """A session row with its member of staff, as one lookup returns them."""

    session: StaffSession
    staff: Agent


def create_session(session: Session, staff: Agent, *, now: datetime, lifetime: timedelta, address: str | None,
                   user_agent: str | None) -> tuple[str, StaffSession]:
    """A fresh session: (the cookie's token, which is not stored, and the row)."""
    token = secrets.token_urlsafe(32)
    record = StaffSession(token_hash=token_hash(token), staff_id=staff.id, csrf_token=secrets.token_urlsafe(32),
                          created_at=now, last_seen_at=now, expires_at=now + lifetime,
                          address=address[:64] if address else None,
                          user_agent=user_agent[:200] if user_agent else None)
    session.add(record)
    session.flush()
    return token, record


def find_session(session: Session, token: str) -> SignedIn | None:
    row = session.execute(select(StaffSession, Agent).join(Agent, Agent.id == StaffSession.staff_id)
                          .where(StaffSession.token_hash == token_hash(token))).first()
    return SignedIn(row[0], row[1]) if row is not None else None


def touch_session(session: Session, session_id: int, staff_id: int, *, now: datetime) -> None:
    session.execute(update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=now))
    session.execute(update(Agent).where(Agent.id == staff_id).values(last_seen_at=now))


def delete_session(session: Session, session_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.id == session_id))


def delete_session_by_token(session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def end_sessions(session: Session, staff_id: int, *, keep: int | None = None) -> int:
    """Sign a member of staff out everywhere (but in session `keep`). Returns how many sessions ended."""
    statement = delete(StaffSession).where(StaffSession.staff_id == staff_id)
    if keep is not None:
        statement = statement.where(StaffSession.id != keep)
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def delete_expired_sessions(session: Session, *, now: datetime, idle: timedelta) -> int:
    """Sessions past their absolute lifetime or idle too long: nobody can use them any more."""
    return int(session.execute(delete(StaffSession).where(or_(  # type: ignore[attr-defined]
        StaffSession.expires_at <= now, StaffSession.last_seen_at <= now - idle))).rowcount or 0)


# --- one-time links ----------------------------------------------------------------------------------------------


def create_token(session: Session, *, purpose: TokenPurpose, staff_id: int | None, now: datetime,
                 lifetime: timedelta) -> str:
    """A one-time link's token (returned once, stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    session.add(StaffToken(token_hash=token_hash(token), purpose=purpose, staff_id=staff_id, created_at=now,
                           expires_at=now + lifetime))
    session.flush()
    return token


def valid_token(session: Session, token: str, *, purpose: TokenPurpose, now: datetime) -> StaffToken | None:
    """The token's row while it is unused and unexpired, else None (a form is shown only for a usable link)."""
    if not token:
        return None
    found = session.execute(select(StaffToken).where(StaffToken.token_hash == token_hash(token),
                                                     StaffToken.purpose == purpose)).scalar_one_or_none()
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    return found


def consume_token(session: Session, token: str, *, purpose: TokenPurpose, now: datetime) -> StaffToken | None:
    """Use a link once: marks it used and returns it, or None when it is unknown, used or expired.

    The UPDATE's condition makes two simultaneous uses of one link end with exactly one winner."""
    found = valid_token(session, token, purpose=purpose, now=now)
    if found is None:
        return None
    won = session.execute(update(StaffToken).where(StaffToken.id == found.id, StaffToken.used_at.is_(None))
                          .values(used_at=now).execution_options(synchronize_session=False))
    if not won.rowcount:  # type: ignore[attr-defined]
        return None
    session.refresh(found)
    return found


def revoke_tokens(session: Session, staff_id: int, *, now: datetime) -> None:
    """Earlier unused links of this member of staff stop working (a new reset link replaces them)."""
    session.execute(update(StaffToken).where(StaffToken.staff_id == staff_id, StaffToken.used_at.is_(None))
                    .values(used_at=now))


def reset_password(session: Session, staff: Agent, *, actor: str, now: datetime, lifetime: timedelta,
                   via: str) -> str:
    """A password reset, from the console's staff page or `sapa staff reset-password`: the old password stops
    working, every browser of theirs is signed out, earlier links die. Returns the new one-time link's token."""
    set_password_hash(session, staff, None, now=now)
    ended = end_sessions(session, staff.id)
    revoke_tokens(session, staff.id, now=now)
    token = create_token(session, purpose="reset", staff_id=staff.id, now=now, lifetime=lifetime)
    record(session, actor=actor, action="staff.reset_issued", subject_type="staff", subject_id=staff.id, now=now,
           detail={"via": via, "sessions_ended": ended})
    return token


# --- failed sign-ins ---------------------------------------------------------------------------------------------


def account_key(email: str) -> str:
    return f"account:{normalise_email(email)}"[:400]


def address_key(address: str) -> str:
    return f"address:{address}"[:400]


def locked_until(session: Session, key: str, *, now: datetime) -> datetime | None:
    found = session.get(LoginFailure, key)
    if found is None or found.locked_until is None or found.locked_until <= now:
        return None
    return found.locked_until


def record_failure(session: Session, key: str, *, now: datetime, window: timedelta, max_failures: int,
                   lock: timedelta) -> datetime | None:
    """Count one failed sign-in for `key`; returns the end of the lock when this failure starts one.

    Failures count within a window from the first; a window that ran out, or a lock that ended, starts afresh.
    The row is locked (FOR UPDATE on PostgreSQL) so replicas counting at once lose no failure."""
    found = _failure_row(session, key, now=now)
    lock_over = found.locked_until is not None and found.locked_until <= now
    if lock_over or found.window_started_at + window <= now:
        found.failures, found.window_started_at, found.locked_until = 0, now, None
    found.failures += 1
    if found.failures >= max_failures and found.locked_until is None:
        found.locked_until = now + lock
        return found.locked_until
    return None


def reset_failures(session: Session, key: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))


def _failure_row(session: Session, key: str, *, now: datetime) -> LoginFailure:
    query = select(LoginFailure).where(LoginFailure.key == key).with_for_update()
    found = session.execute(query).scalar_one_or_none()
    if found is not None:
        return found
    try:
        with session.begin_nested():  # two first failures at once: the loser re-reads the winner's row
            session.add(LoginFailure(key=key, failures=0, window_started_at=now, locked_until=None))
    except IntegrityError:
        pass
    return session.execute(query).scalar_one()
