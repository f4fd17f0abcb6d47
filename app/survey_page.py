"""The public satisfaction survey page a receipt e-mail links to: /survey/<signed token>.

One question (a score from 1 to 5 and a comment), server-rendered, every value
escaped (Jinja2 autoescape), no script, the admin page's strict
Content-Security-Policy (its own stylesheet is the only resource). The form
carries the signed token in a hidden field: it is the proof of having got the
e-mail and single use (core/survey.py), so no session or CSRF cookie is
needed; a cross-site POST is refused anyway (the admin page's own form reading).
"""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pouracquit.core.service import Service
from pouracquit.core.survey import MAX_COMMENT, SurveyRefused, answered, record_answer, secret_of, verify

from .admin_page.web import SecurityHeaders, read_form

PREFIX = "/survey"

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
    def __init__(self, service: Service) -> None:
        self.service = service
        self.lang = service.settings.email.language
        self.words = WORDS[self.lang]

    def _page(self, status: int, *, message: str = "", token: str = "", error: str = "",
              comment: str = "") -> Response:
        html = _ENV.get_template("survey.html").render(
            lang=self.lang, w=self.words, prefix=PREFIX, message=message, token=token, error=error,
            comment=comment, max_comment=MAX_COMMENT,
            question=self.words["question"].format(seller=self.service.settings.company.name))
        return HTMLResponse(html, status_code=status)

    def _check(self, token: str) -> str:
        """The receipt id of a valid token; SurveyRefused otherwise (or the survey is off)."""
        survey = self.service.settings.survey
        if not survey.enabled:
            raise SurveyRefused("closed")
        return verify(secret_of(survey), token, datetime.now(UTC))

    def show(self, token: str) -> Response:
        try:
            receipt_id = self._check(token)
        except SurveyRefused as exc:
            return self._page(404, message=self.words[exc.kind])
        if answered(self.service.store, receipt_id):
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
            fresh = record_answer(self.service.store, receipt_id, int(score), comment, datetime.now(UTC))
        except SurveyRefused as exc:
            return self._page(404, message=self.words[exc.kind])
        return self._page(200 if fresh else 409, message=self.words["thanks" if fresh else "done"])


def survey_app(service: Service) -> SecurityHeaders:
    """The ASGI app the admin server mounts at PREFIX; public, like the verify page."""
    page = SurveyPage(service)

    async def show(request: Request) -> Response:
        return await run_in_threadpool(page.show, request.path_params["token"])

    async def answer(request: Request) -> Response:
        form = await read_form(request, max_fields=5)
        if form is None:
            return Response("refused", status_code=403, media_type="text/plain")
        return await run_in_threadpool(page.answer, form)

    async def style(request: Request) -> Response:
        return Response(STYLE, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    app = Starlette(routes=[Route("/style.css", style), Route("/answer", answer, methods=["POST"]),
                            Route("/{token}", show, methods=["GET", "HEAD"])])
    return SecurityHeaders(app)
