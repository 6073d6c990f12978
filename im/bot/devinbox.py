"""The dev inbox's group chats talk to the bot: a member writes "@bot …" and the answer appears in
the group (what every member may see) and, for the rest, on the asker's phone."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from im.adapters import get_adapter
from im.adapters.devinbox.adapter import PLATFORM
from im.bot.services import answer_in_group


@require_POST
def group_ask(request: HttpRequest, group_id: int) -> HttpResponse:
    """A member writes in the group: only a member whose phone this browser signed in to (or staff)."""
    from im.adapters.devinbox.views import group_for, may_use_phone

    chat = group_for(request, group_id)
    text = request.POST.get("text", "").strip()
    speaker = request.POST.get("member", "")
    if not text or len(text) > 1000 or speaker not in [str(m) for m in chat.members] or not speaker.isdigit():
        return HttpResponseBadRequest("a member of this group and a text of 1 to 1000 characters")
    users = {str(u.pk): u for u in get_user_model().objects.filter(
        pk__in=[int(m) for m in chat.members if str(m).isdigit()], is_active=True)}
    if speaker not in users:
        return HttpResponseBadRequest("unknown member")
    if not may_use_phone(request, users[speaker]):
        raise Http404()  # writing as someone this browser has not proved to be
    # Everyone in the chat reads the public answer; someone the portal does not know may see nothing.
    audience = [users.get(str(m), AnonymousUser()) for m in chat.members]
    answer_in_group(get_adapter(PLATFORM), str(chat.pk), users[speaker], audience, text)
    return redirect("devinbox:group", group_id=chat.pk)
