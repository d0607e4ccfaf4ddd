"""littlelogs' OAuth2 provider, on django-oauth-toolkit: the validator policy, the "apps" page and the URLs.

Settings refer to this module by dotted path only (OAUTH2_VALIDATOR_CLASS), so importing it needs a ready
app registry; logsvc/urls.py includes it as the `oauth2_provider` namespace the toolkit's templates and
metadata view reverse.

Policy beyond the toolkit's settings (RFC 9700):
* PKCE (S256 only) is required for public clients and optional for confidential ones; a token request
  with a code_verifier whose authorization request had no code_challenge is refused (PKCE downgrade, §2.1.1).
* Redirect URIs are https, except http on a loopback address for native apps and development
  (RFC 8252 §7.3): checked when an app is registered or edited here, and again at /oauth/authorize for
  every app, however it was created. Matching is exact (the toolkit, 3.4.1+), bar the port of 127.0.0.1/[::1].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import unquote_plus, urlsplit

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path, re_path, reverse_lazy
from django.utils.decorators import method_decorator
from django.views.generic import CreateView, DeleteView, DetailView, ListView, UpdateView
from oauth2_provider import views as oauth2_views
from oauth2_provider.models import AbstractApplication, get_access_token_model, get_application_model, get_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator as ToolkitValidator
from oauthlib.oauth2.rfc6749 import errors

from logsvc import signin
from logsvc.db import prepared_cursor

Application = get_application_model()
Grant = get_grant_model()
AccessToken = get_access_token_model()
User = get_user_model()

TOKEN_MODELS = (AccessToken, Application, User)


def _columns(model: type[Model], alias: str) -> str:
    # a concrete field has a column
    return ", ".join(
        f"{alias}.{connection.ops.quote_name(cast(str, field.column))}" for field in model._meta.concrete_fields
    )


TOKEN_SQL = (
    f"SELECT {_columns(AccessToken, 't')}, {_columns(Application, 'a')}, {_columns(User, 'u')} "
    f"FROM {AccessToken._meta.db_table} t "
    f"LEFT JOIN {Application._meta.db_table} a ON a.id = t.application_id "
    f"LEFT JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.token_checksum = %s"
)


def _instances(row: tuple, models: tuple[type[Model], ...]) -> list[Model | None]:
    """Model instances from a row of their concrete fields' columns, one model after another, as the ORM
    would make them (from_db, each field's from_db_value); None for a LEFT JOIN that found nothing."""
    instances: list[Model | None] = []
    start = 0
    for model in models:
        fields = model._meta.concrete_fields
        values: Sequence[Any] = row[start : start + len(fields)]
        start += len(fields)
        if values[0] is None:
            instances.append(None)
            continue
        values = [
            field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
            for field, value in zip(fields, values, strict=True)
        ]
        instances.append(model.from_db(connection.alias, [field.attname for field in fields], values))
    return instances


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REDIRECT_URI_RULE = (
    "Redirect URIs must use https; http is allowed only for a loopback address "
    "(http://127.0.0.1:<port>/…, http://[::1]:<port>/… or http://localhost/…)."
)


def redirect_uri_is_allowed(uri: str) -> bool:
    """https anywhere, http only on a loopback host (RFC 9700 §2.6, RFC 8252 §7.3)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)


class OAuth2Validator(ToolkitValidator):
    """The toolkit's validator with littlelogs' PKCE and redirect-URI rules (OAUTH2_VALIDATOR_CLASS)."""

    def _client(self, client_id, request):
        client = getattr(request, "client", None)
        if isinstance(client, Application) and client.client_id == client_id:
            return client
        return Application.objects.filter(client_id=client_id).only("client_type").first()

    def is_pkce_required(self, client_id, request):
        """Public clients (and unknown ones) must use PKCE; confidential clients may (RFC 9700 §2.1.1)."""
        client = self._client(client_id, request)
        return client is None or client.client_type != AbstractApplication.CLIENT_CONFIDENTIAL

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        # Lock the code's grant until the exchange commits (TokenView is atomic): a concurrent replay of the
        # code waits here, then finds it used. Unlocked, both passed this check, each stored a token, and the
        # loser's later lookup of the deleted grant was a 500.
        Grant.objects.select_for_update().filter(code=code, application=client).first()
        return super().validate_code(client_id, code, client, request, *args, **kwargs)

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        return redirect_uri_is_allowed(redirect_uri) and super().validate_redirect_uri(
            client_id, redirect_uri, request, *args, **kwargs
        )

    def _load_access_token(self, token):
        """The toolkit's query (the token by its checksum, with its application and user) in plain SQL: the ORM's
        select_related() of three wide models cost ~2 ms of CPU on every request with a token, a third of a
        timeline page's; this costs ~0.3 ms."""
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        with prepared_cursor("default") as cursor:  # a token issued a moment ago: never a replica
            cursor.execute(TOKEN_SQL, [checksum])
            row = cursor.fetchone()
        if row is None:
            return None
        access_token, application, user = _instances(row, TOKEN_MODELS)
        AccessToken._meta.get_field("application").set_cached_value(access_token, application)
        AccessToken._meta.get_field("user").set_cached_value(access_token, user)
        return access_token

    def validate_bearer_token(self, token, scopes, request):
        # The toolkit takes a deactivated user's token; their session and API keys stop working, so must it.
        if not super().validate_bearer_token(token, scopes, request):
            return False
        if not request.user.is_active:
            request.oauth2_error = {"error": "invalid_token", "error_description": "The access token is invalid."}
            return False
        return True

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        # Runs once redirect_uri is trusted, before the consent page: refuse a non-S256 challenge there
        # rather than after the user said yes (COMPLIANT_BCP_RFC9700_PKCE_METHOD only checks at the end).
        # A missing method means "plain" (RFC 7636 §4.3).
        if request.code_challenge is not None and request.code_challenge_method != "S256":
            raise errors.InvalidRequestError(
                description="Unsupported code_challenge_method: send code_challenge_method=S256.", request=request
            )
        return super().validate_response_type(client_id, response_type, client, request, *args, **kwargs)

    def get_code_challenge(self, code, request):
        # oauthlib checks a verifier only against a stored challenge; one sent without a challenge is
        # the PKCE downgrade RFC 9700 §2.1.1 says to refuse.
        challenge = super().get_code_challenge(code, request)
        if challenge is None and request.code_verifier is not None:
            raise errors.InvalidGrantError(
                description="code_verifier sent, but the authorization request had no code_challenge.",
                request=request,
            )
        return challenge


# The "apps" page: a signed-in user registers and manages their own client apps.


MAX_REDIRECT_URIS, MAX_REDIRECT_URI_LENGTH = 10, 2_000


def split_uris(value: str) -> list[str]:
    return value.split()


class ApplicationForm(forms.ModelForm):
    """Authorization-code apps only, public or confidential, with littlelogs' redirect-URI rule."""

    authorization_grant_type = forms.ChoiceField(
        label="Grant type",
        choices=[(AbstractApplication.GRANT_AUTHORIZATION_CODE, "Authorization code")],
        initial=AbstractApplication.GRANT_AUTHORIZATION_CODE,
    )
    client_type = forms.ChoiceField(
        label="Client type",
        choices=AbstractApplication.CLIENT_TYPES,
        widget=forms.RadioSelect,
        initial=AbstractApplication.CLIENT_CONFIDENTIAL,
        help_text="Confidential: a server that can keep its client secret. Public: a browser or mobile app, "
        "which cannot; it must use PKCE (S256).",
    )

    class Meta:
        model = Application
        fields = ["name", "client_type", "authorization_grant_type", "redirect_uris"]
        widgets: dict[str, forms.Widget] = {"redirect_uris": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "redirect_uris": "One or more, separated by spaces or new lines; matched exactly. " + REDIRECT_URI_RULE,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = True

    def clean_redirect_uris(self) -> str:
        uris = split_uris(self.cleaned_data["redirect_uris"])
        if not uris:
            raise ValidationError("Enter at least one redirect URI.")
        if len(uris) > MAX_REDIRECT_URIS or any(len(uri) > MAX_REDIRECT_URI_LENGTH for uri in uris):
            raise ValidationError(
                f"Enter at most {MAX_REDIRECT_URIS} redirect URIs of at most {MAX_REDIRECT_URI_LENGTH} characters each."
            )
        bad = [uri for uri in uris if not redirect_uri_is_allowed(uri)]
        if bad:
            raise ValidationError(f"{REDIRECT_URI_RULE} Not allowed: {' '.join(bad)}")
        return " ".join(uris)

    def _post_clean(self):
        # Once clean_redirect_uris refused the field, the model's clean() would add "redirect_uris cannot
        # be empty" on top: keep only our message.
        ours = list(self.errors.get("redirect_uris", []))
        super()._post_clean()
        if ours:
            del self._errors["redirect_uris"]
            for message in ours:
                self.add_error("redirect_uris", message)


class RegistrationForm(ApplicationForm):
    """Shows the generated secret once: it is stored hashed, so this is the only time it can be read."""

    class Meta(ApplicationForm.Meta):
        fields = ["name", "client_type", "authorization_grant_type", "redirect_uris", "client_secret"]
        widgets = {
            **ApplicationForm.Meta.widgets,
            "client_secret": forms.TextInput(attrs={"readonly": True, "class": "secret", "autocomplete": "off"}),
        }
        help_texts = {
            **ApplicationForm.Meta.help_texts,
            "client_secret": "Copy it now: it is stored hashed and cannot be shown again. "
            "Public clients do not use it.",
        }

    def clean_client_secret(self) -> str:
        secret = self.cleaned_data["client_secret"]
        if len(secret) < 32:
            raise ValidationError("The client secret must be at least 32 characters long.")
        return secret


class OwnApplicationsMixin(LoginRequiredMixin):
    def get_queryset(self):
        return Application.objects.filter(user=self.request.user).order_by("name", "pk")


class ApplicationList(OwnApplicationsMixin, ListView):
    context_object_name = "applications"
    template_name = "oauth2_provider/application_list.html"


class ApplicationRegistration(LoginRequiredMixin, CreateView):
    form_class = RegistrationForm
    template_name = "oauth2_provider/application_registration_form.html"

    def form_valid(self, form):
        form.instance.user = self.request.user
        form.instance.hash_client_secret = True
        return super().form_valid(form)


class ApplicationDetail(OwnApplicationsMixin, DetailView):
    context_object_name = "application"
    template_name = "oauth2_provider/application_detail.html"


class ApplicationUpdate(OwnApplicationsMixin, UpdateView):
    form_class = ApplicationForm
    context_object_name = "application"
    template_name = "oauth2_provider/application_form.html"


class ApplicationDelete(OwnApplicationsMixin, DeleteView):
    context_object_name = "application"
    success_url = reverse_lazy("oauth2_provider:list")
    template_name = "oauth2_provider/application_confirm_delete.html"


def requested_client_id(request: HttpRequest) -> str | None:
    """The client_id a token or revocation request authenticates as: HTTP Basic's user (RFC 6749 §2.3.1, which
    the toolkit tries first), else the form's client_id."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return unquote_plus(base64.b64decode(value.strip()).decode().partition(":")[0])
        except (binascii.Error, UnicodeDecodeError):
            return None
    return request.POST.get("client_id")


class ClientAuthenticationLimit:
    """Failed client authentications (401 invalid_client) count against the client id and the address, as
    failed sign-ins do (logsvc.signin); past a limit the answer is 429 with Retry-After, secret unchecked."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        client_id = requested_client_id(request)
        if (wait := signin.client_locked_out(request, client_id)) is not None:
            return self.too_many_failures(wait)
        # a mixin: the toolkit's TokenView or RevokeTokenView, after it, has post()
        response = super().post(request, *args, **kwargs)  # type: ignore[misc]
        failed = response.status_code == 401 and b"invalid_client" in response.content
        if failed and (wait := signin.client_authentication_failed(request, client_id)) is not None:
            return self.too_many_failures(wait)
        return response

    @staticmethod
    def too_many_failures(seconds: int) -> HttpResponse:
        body = {
            "error": "slow_down",
            "error_description": f"Too many failed client authentications; try again in {seconds} seconds.",
        }
        response = JsonResponse(body, status=429)
        response["Retry-After"] = str(seconds)
        response["Cache-Control"] = "no-store"
        return response


@method_decorator(transaction.atomic, name="post")
class AtomicTokenView(oauth2_views.TokenView):
    """The toolkit's token endpoint, in one transaction (see OAuth2Validator.validate_code)."""


class TokenView(ClientAuthenticationLimit, AtomicTokenView):
    """The token endpoint; a failure is counted outside (after) the token transaction."""


class RevokeTokenView(ClientAuthenticationLimit, oauth2_views.RevokeTokenView):
    pass


class AuthorizationView(oauth2_views.AuthorizationView):
    """The consent page. X-Frame-Options: DENY comes from Django's middleware for every page; this adds
    CSP frame-ancestors for browsers that prefer it (RFC 9700 §4.16, clickjacking)."""

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response


app_name = "oauth2_provider"  # the toolkit's templates and metadata view reverse these names

urlpatterns = [
    # The seed's endpoints have no trailing slash; both spellings are served, never redirected,
    # so a POST keeps its body.
    re_path(r"^oauth/authorize/?$", AuthorizationView.as_view(), name="authorize"),
    re_path(r"^oauth/token/?$", TokenView.as_view(), name="token"),
    re_path(r"^oauth/revoke_token/?$", RevokeTokenView.as_view(), name="revoke-token"),
    # RFC 8414 metadata at the root, so the issuer (and the RFC 9207 `iss`) is the site's origin.
    path(
        ".well-known/oauth-authorization-server",
        oauth2_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path("oauth/applications/", ApplicationList.as_view(), name="list"),
    path("oauth/applications/register/", ApplicationRegistration.as_view(), name="register"),
    path("oauth/applications/<int:pk>/", ApplicationDetail.as_view(), name="detail"),
    path("oauth/applications/<int:pk>/update/", ApplicationUpdate.as_view(), name="update"),
    path("oauth/applications/<int:pk>/delete/", ApplicationDelete.as_view(), name="delete"),
    path("oauth/authorized_tokens/", oauth2_views.AuthorizedTokensListView.as_view(), name="authorized-token-list"),
    path(
        "oauth/authorized_tokens/<int:pk>/delete/",
        oauth2_views.AuthorizedTokenDeleteView.as_view(),
        name="authorized-token-delete",
    ),
]
