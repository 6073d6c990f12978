"""The dev mailbox: with the dev inbox on and no SMTP server configured, email is kept in a table and
shown at /dev/mail/ (as the dev inbox shows IM cards), so the demo's guest invitations can be read.
Only by staff: every guest's one-time code is in there, and a code opens its group's board."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.mail.backends.base import BaseEmailBackend
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from boards.models import DevMailMessage


class DevMailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        for message in email_messages:
            DevMailMessage.objects.create(to=", ".join(message.recipients())[:500], subject=message.subject[:300],
                                          body=message.body)
        return len(email_messages)


@staff_member_required
@require_GET
def mailbox(request: HttpRequest) -> HttpResponse:
    messages = DevMailMessage.objects.all()
    if request.GET.get("to"):
        messages = messages.filter(to__icontains=request.GET["to"])
    return render(request, "boards/mailbox.html", {"mails": messages[:50]})
