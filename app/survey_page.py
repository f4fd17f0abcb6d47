"""The public satisfaction survey page a receipt e-mail links to: /survey/<signed token>.

One question (a score from 1 to 5 and a comment), server-rendered, every value
escaped (Jinja2 autoescape), no script, the admin page's strict
Content-Security-Policy (its own stylesheet is the only resource). The form
carries the signed token in a hidden field: it is the proof of having got the
e-mail and single use (core/survey.py), so no session or CSRF cookie is
needed; a cross-site POST is refused anyway (the admin page's own form reading).

In a deployment of several companies the token is checked with the secret of
the company whose receipt it names: at ``/t/<tenant>/survey/...`` that company,
at the bare ``/survey/...`` the company the receipt id belongs to
(``Served.route_of``). A token of one company presented at another's address
finds no such receipt there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pouracquit.core.service import Service
from pouracquit.core.survey import MAX_COMMENT, SurveyRefused, answered, record_answer, secret_of, verify

from .admin_page.web import SecurityHeaders, read_form
from .served import Served

PREFIX = "/survey"
TENANT_PREFIX = "/t/{tenant}" + PREFIX
RECEIPT_ID = re.compile(r"[0-9a-f]{20}")

STYLE = """body { font-family: "DejaVu Sans", sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem;
color: #1b2733; } h1 { font-size: 1.3rem; } fieldset { border: 0; padding: 0; display: flex; gap: 1rem; }
textarea { width: 100%; min-height: 6rem; } button { margin-top: 1rem; padding: .5rem 1.2rem; }
.note { padding: .8rem 1rem; border-radius: .4rem; background: #eef2f6; } .error { color: #8a1c1c; }
"""
WORDS = {
    "fr": {"title": "Votre avis", "question": "Êtes-vous satisfait de votre commande auprès de {seller} ?",
           "score": "Note de 1 (pas du tout) à 5 (tout à fait)", "comment": "Un commentaire (facultatif)",
           "send": "Envoyer", "thanks": "Merci pour votre réponse !",
           "done": "Votre réponse a déjà été enregistrée. Merci !", "pick": "Choisissez une note de 1 à 5.",
           "invalid": "Ce lien de questionnaire n'est pas valide.", "unknown": "Ce questionnaire n'existe pas.",
           "expired": "Ce questionnaire a expiré. Merci de votre intérêt.",
           "closed": "Ce questionnaire n'est plus disponible."},
    "en": {"title": "Your opinion", "question": "Are you satisfied with your order from {seller}?",
           "score": "Score from 1 (not at all) to 5 (completely)", "comment": "A comment (optional)",
           "send": "Send", "thanks": "Thank you for your answer!",
           "done": "Your answer was already recorded. Thank you!", "pick": "Pick a score from 1 to 5.",
           "invalid": "This survey link is not valid.", "unknown": "This survey does not exist.",
           "expired": "This survey has expired. Thank you for your interest.",
           "closed": "This survey is no longer available."},
}
PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ w.title }}</title><link rel="stylesheet" href="{{ prefix }}/style.css"></head>
<body><h1>{{ w.title }}</h1>
{% if message %}<p class="note" id="message">{{ message }}</p>{% endif %}
{% if token %}
<form method="post" action="{{ prefix }}/answer">
<input type="hidden" name="token" value="{{ token }}">
<p>{{ question }}</p>
{% if error %}<p class="error" id="error">{{ error }}</p>{% endif %}
<fieldset><legend>{{ w.score }}</legend>
{% for n in range(1, 6) %}<label><input type="radio" name="score" value="{{ n }}" required> {{ n }}</label>
{% endfor %}</fieldset>
<p><label for="comment">{{ w.comment }}</label><br>
<textarea id="comment" name="comment" maxlength="{{ max_comment }}">{{ comment }}</textarea></p>
<button type="submit">{{ w.send }}</button>
</form>
{% endif %}
</body></html>
"""
_ENV = Environment(loader=DictLoader({"survey.html": PAGE}), autoescape=True)


class SurveyPage:
    """One company's survey (``service``); None: no company has this link, every answer is "invalid"."""

    def __init__(self, service: Service | None, lang: str, prefix: str = PREFIX) -> None:
        self.service, self.prefix = service, prefix
        self.lang = service.settings.email.language if service is not None else lang
        self.words = WORDS[self.lang]

    def _page(self, status: int, *, message: str = "", token: str = "", error: str = "",
              comment: str = "") -> Response:
        seller = self.service.settings.company.name if self.service is not None else ""
        html = _ENV.get_template("survey.html").render(
            lang=self.lang, w=self.words, prefix=self.prefix, message=message, token=token, error=error,
            comment=comment, max_comment=MAX_COMMENT, question=self.words["question"].format(seller=seller))
        return HTMLResponse(html, status_code=status)

    def _check(self, token: str) -> str:
        """The receipt id of a valid token; SurveyRefused otherwise (or the survey is off)."""
        if self.service is None:
            raise SurveyRefused("invalid")  # as a forged link: whether an id exists elsewhere is not told
        survey = self.service.settings.survey
        if not survey.enabled:
            raise SurveyRefused("closed")
        return verify(secret_of(survey), token, datetime.now(UTC))

    def show(self, token: str) -> Response:
        try:
            receipt_id = self._check(token)
        except SurveyRefused as exc:
            return self._page(404, message=self.words[exc.kind])
        store = self.service.store  # type: ignore[union-attr]  # _check refused a page without one
        found = store.receipt(receipt_id)
        if found is None or found.id != receipt_id:  # signed with a secret two companies share, say
            return self._page(404, message=self.words["unknown"])
        if answered(store, receipt_id):
            return self._page(200, message=self.words["done"])
        return self._page(200, token=token)

    def answer(self, form: dict[str, str]) -> Response:
        token = form.get("token", "")
        try:
            receipt_id = self._check(token)
        except SurveyRefused as exc:
            return self._page(400, message=self.words[exc.kind])
        comment = form.get("comment", "")[:MAX_COMMENT]
        score = form.get("score", "")
        if score not in {"1", "2", "3", "4", "5"}:
            return self._page(400, token=token, error=self.words["pick"], comment=comment)
        try:
            fresh = record_answer(self.service.store, receipt_id, int(score), comment,  # type: ignore[union-attr]
                                  datetime.now(UTC))
        except SurveyRefused as exc:
            return self._page(404, message=self.words[exc.kind])
        return self._page(200 if fresh else 409, message=self.words["thanks" if fresh else "done"])


def page_for(served: Served, tenant: str | None, token: str) -> SurveyPage:
    """The survey page of the company a link is for: the one its address names, or else the
    one its receipt id belongs to."""
    if tenant is None:
        rid = token.split(".", 1)[0]
        owner = served.route_of(rid) if RECEIPT_ID.fullmatch(rid) else None
        prefix = PREFIX
    else:
        owner, prefix = tenant, TENANT_PREFIX.format(tenant=tenant)
    service = served.service(owner) if owner else None
    # an address naming no company of ours is not echoed back in the page
    return SurveyPage(service, served.settings.email.language, prefix if service is not None else PREFIX)


def survey_routes(source: Service | Served) -> list[BaseRoute]:
    """What the admin server mounts: the page at PREFIX and at each company's own
    ``/t/<tenant>/survey``; public, like the verify page."""
    served = source if isinstance(source, Served) else Served(source)

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        page = await run_in_threadpool(page_for, served, request.path_params.get("tenant"), token)
        return await run_in_threadpool(page.show, token)

    async def answer(request: Request) -> Response:
        form = await read_form(request, max_fields=5)
        if form is None:
            return Response("refused", status_code=403, media_type="text/plain")
        page = await run_in_threadpool(page_for, served, request.path_params.get("tenant"), form.get("token", ""))
        return await run_in_threadpool(page.answer, form)

    async def style(request: Request) -> Response:
        return Response(STYLE, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    app = SecurityHeaders(Starlette(routes=[Route("/style.css", style), Route("/answer", answer, methods=["POST"]),
                                            Route("/{token}", show, methods=["GET", "HEAD"])]))
    return [Mount(PREFIX, app=app), Mount(TENANT_PREFIX, app=app)]
