"""A customer in the browser, as a test fixture: conversation tests read like conversations."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

# CRM-1.5: the privacy notice a new customer is shown (config.yml `privacy_notice`, id), last after the first answer.
NOTICE = ("Sebelum lanjut: PT Contoh Sejahtera menyimpan nama, kontak, dan isi percakapan Anda untuk melayani "
          "permintaan Anda, sesuai UU Pelindungan Data Pribadi. Anda bisa meminta salinan atau penghapusan data "
          "kapan saja dengan menulis \"hapus data saya\". Apakah Anda setuju data Anda kami proses untuk keperluan "
          "ini?")
NOTICE_EN = ("Before we continue: PT Contoh Sejahtera keeps your name, contact details and the content of our "
             "conversations to serve your requests, under Indonesia's Personal Data Protection Law. You can ask for a "
             "copy or deletion at any time by writing \"delete my data\". Do you agree to us processing your data for "
             "this purpose?")
# How SMS and WhatsApp (no buttons) show the notice: its two options numbered, as channels/twilio.py words them.
NOTICE_NUMBERED = NOTICE + "\n\n1. Setuju\n2. Tidak setuju"
NOTICE_BUTTONS = [{"title": "Setuju", "payload": "consent:data:yes"},
                  {"title": "Tidak setuju", "payload": "consent:data:no"}]


class WebchatUser:
    def __init__(self, client: TestClient, sapa: Any, language: str = "id") -> None:
        self.client = client
        self.sapa = sapa
        response = client.post("/api/webchat/sessions", json={"language": language})
        assert response.status_code == 201, response.text
        self.session_id: str = response.json()["session_id"]
        self.last: dict[str, Any] = {}

    def send(self, text: str, *, client_message_id: str | None = None, payload: str | None = None,
             button_of: int | None = None, language: str | None = None) -> dict[str, Any]:
        """POST a message as the page does: `language` is the page's language, `button_of` the id of the
        message whose button was pressed (both optional, as for older pages)."""
        body: dict[str, Any] = {
            "session_id": self.session_id,
            "client_message_id": client_message_id or uuid.uuid4().hex,
            "text": text,
        }
        if payload is not None:
            body["payload"] = payload
        if button_of is not None:
            body["button_of"] = button_of
        if language is not None:
            body["language"] = language
        response = self.client.post("/api/webchat/messages", json=body)
        assert response.status_code == 200, response.text
        self.last = response.json()
        return self.last

    def say(self, text: str, **kwargs: Any) -> list[str]:
        """Send a message and return the texts Sapa replied with."""
        return [reply["text"] for reply in self.send(text, **kwargs)["replies"]]

    def press(self, title: str, message: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        """Press the button titled `title` of `message` (default: the last reply that has it), as the page
        does (payload + button_of), and return the texts Sapa replied with."""
        if message is None:
            message = next(reply for reply in reversed(self.last.get("replies", []))
                           if any(b["title"] == title for b in reply["buttons"]))
        (button,) = [b for b in message["buttons"] if b["title"] == title]
        replies = self.send(title, payload=button["payload"], button_of=message["id"], **kwargs)["replies"]
        return [reply["text"] for reply in replies]

    def buttons(self) -> list[dict[str, str]]:
        return [b for reply in self.last.get("replies", []) for b in reply["buttons"]]

    def history(self, after: int = 0) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/webchat/sessions/{self.session_id}/messages", params={"after": after})
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])
