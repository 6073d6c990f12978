"""Settings from the environment (12-factor).

Embedded default (no env at all): SQLite, in-memory channel layer, Celery tasks run in-process,
the built-in demo ERP and the dev inbox. Production: DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG=0.

Every variable is read through the strict helpers of ``portal/env.py``: a value that does not parse
(``DEBUG=ture``, ``MATRIX_TIMEOUT=ten``) stops the start with the variable's name, never a silent default.

Sections, in order (each begins with a ``# --- Name ---`` line):
Core, Apps and middleware, Database, Redis / cache / Celery, Authentication, Language and time,
Static files, Content-Security-Policy, API, Product, Widgets, ERP connectors, IM platform sign-in (allauth),
Matrix adapter, Slack / Agora / webhook adapters, WeCom / Feishu / DingTalk adapters, Bot, OIDC sign-in,
Production hardening, Logging, Notifications, Trust, Observability, Foresight.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

from portal.env import env_bool, env_choice, env_float, env_int, env_json_object, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))


# --- Core ---
def _secret_key() -> str:
    """SECRET_KEY from env; otherwise one generated once and kept under var/ so sessions survive restarts."""
    if env_str("SECRET_KEY"):
        return env_str("SECRET_KEY")
    key_file = VAR_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = get_random_secret_key()
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Apps and middleware ---
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "portal",
    "sso",
    "erp",
    "erp.connectors.demo",
    "approvals",
    "inventory",
    "finance",
    "im",
    "im.platforms.devinbox",
    "widgets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.NoStoreMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A card link's grant: the recipient on the one page it names, anonymous elsewhere (sso/links.py).
    "sso.links.LinkSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sso.middleware.UserTimezoneMiddleware",
    "sso.audit.AuditActorMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.DatabaseUnavailableMiddleware",
]
# Seconds a 503 (database unreachable, connection pool exhausted) asks the client to wait.
UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("UNAVAILABLE_RETRY_AFTER_SECONDS", 5)

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "sso.links.link_session_context",
            ],
        },
    },
]

# --- Database ---
# DATABASE_URL, default SQLite under var/.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file test database so that a Daphne subprocess (browser tests) sees the same data.
    # Per process, so that two test runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-portal-{os.getpid()}.sqlite3")}
    # SQLite serialises writers. Three things keep concurrent requests (Daphne runs each on a thread,
    # in-process tasks send cards beside them) from failing with "database is locked":
    # - BEGIN IMMEDIATE for every transaction (Django 5.1+ ``transaction_mode``): a writer takes the
    #   write lock when its transaction starts and waits its turn; a deferred transaction that read
    #   first and then wants to write cannot wait (SQLite answers SQLITE_BUSY at once, no timeout).
    #   Racing decisions then queue, and the second sees the first: 409 or the same key's 200.
    # - WAL: readers never block the writer nor wait for it (the mode is kept in the file).
    # - a busy timeout (``timeout``, seconds): how long a writer waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
elif env_str("DB_POOL_MAX_SIZE"):
    # A connection pool per process (psycopg_pool). Daphne runs every request on a thread of its own, so
    # without it each request connects anew and a burst opens as many connections as it has requests,
    # until PostgreSQL refuses more; with it a burst waits for one of at most N. `portal.serve` sets it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool needs it; the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env_int("DB_POOL_MAX_SIZE", 10, minimum=1),
        "timeout": env_float("DB_POOL_TIMEOUT", 20),  # seconds a request waits for a connection
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis / cache / Celery ---
# Redis: channel layer and Celery broker when configured; in-memory and in-process otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: one Redis connection per process whatever the number of sockets; the list
            # based core layer timed out at a few hundred sockets per process (bench/fanout.py).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNELS_PREFIX", "portal")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# One cache for every process: token caches of IM platforms, bot conversations, live versions.
CACHES = (
    {"default": {"BACKEND": "portal.cache.PrefixedRedisCache", "LOCATION": REDIS_URL,
                 "KEY_PREFIX": env_str("CACHE_PREFIX", "portal")}}
    if REDIS_URL
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)

# Sessions: with Redis, read from the shared cache and written through to the database (one query less
# on every signed-in request; a session the cache lost is read from the database). Without Redis the
# in-process cache is not shared between processes: the database alone.
SESSION_ENGINE = ("django.contrib.sessions.backends.cached_db" if REDIS_URL
                  else "django.contrib.sessions.backends.db")

# Seconds a process may keep the permission reads (rules, a user's groups, ERP roles and delegations:
# sso.snapshot) while no change through the portal bumped their stamp in the cache above; a write that
# bypasses the portal (raw SQL, another deployment) is seen within this time. 0: read them at every check.
# Off by default without Redis: the in-process cache is not shared, so a second process (a manage.py
# command beside the demo, a test's live server) would not see the other's bumps.
PERMISSION_CACHE_SECONDS = env_float("PERMISSION_CACHE_SECONDS", 5 if REDIS_URL else 0, minimum=0)

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # a host, or kombu warns on every start
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
# Seconds a sender holds the outbox rows it claimed (im.services.send_batch): sends start only in the
# first half, and rows of a sender that died are free again once it has passed.
DELIVERY_LEASE_SECONDS = float(os.environ.get("DELIVERY_LEASE_SECONDS", "60"))
CELERY_TASK_EAGER_PROPAGATES = False
# A task is acknowledged only after it ran, and re-queued if its worker dies: with idempotent
# tasks this gives exactly-once effects (see docs/architecture.md).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # How long an unacknowledged task waits before Redis hands it to another worker.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
}
if os.environ.get("CELERY_RESTORE_SWEEP_SECONDS"):
    # How often a worker looks for unacknowledged tasks older than the visibility timeout (kombu's
    # default: every ~100 s, skipped when another worker holds the sweep's lock at that moment).
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "unacked_restore_interval": env_int("CELERY_RESTORE_SWEEP_SECONDS", 10),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "portal")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-work": {"task": "portal.tasks.requeue_stale_work", "schedule": 60.0},
    "sync-erp-identities": {
        "task": "sso.tasks.sync_all_erp_identities",
        "schedule": env_float("ERP_IDENTITY_SYNC_SECONDS", 900),
    },
}

# --- Authentication ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The sign-in blocks below (OIDC, IM platforms) append their backends to this list.
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "approvals:mine"
LOGOUT_REDIRECT_URL = "login"

# --- Language and time ---
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ---
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies are written by collectstatic; {% static %} works without it (tests, dev).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the app folders only when collectstatic has not run (unit tests, a bare
# checkout); otherwise the collected, pre-compressed copies (gzip) are what goes over the wire.
WHITENOISE_USE_FINDERS = not STATIC_ROOT.is_dir()
WHITENOISE_AUTOREFRESH = DEBUG

# --- Content-Security-Policy ---
# django-csp: everything from this origin only; nothing may frame a page
# except widgets, which replace frame-ancestors with WIDGET_FRAME_ANCESTORS.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # htmx and admin set inline styles
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.problem_exception_handler",
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ERP ↔ IM portal API",
    "DESCRIPTION": (
        "Integration API: signed ERP event intake (CloudEvents 1.0 + Standard Webhooks) and the "
        "approval API. Event types and their data are described at /api/events/."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Product ---
# A recipient the ERP named but whom no rule lets see the document gets a card without its data
# (True) or no card at all (False); either way the delivery is visible in admin.
APPROVAL_CARD_NOTICE_WITHOUT_ACCESS = env_bool("APPROVAL_CARD_NOTICE_WITHOUT_ACCESS", default=True)
# --- Widgets ---
# Widget links carry a signed token bound to the viewer and the widget (IM webviews and iframes may
# not send our session cookie); this long they stay valid.
WIDGET_EMBED_MAX_AGE = env_int("WIDGET_EMBED_MAX_AGE", 12 * 3600)
# Origins allowed to frame widgets (the IM clients' web origins), e.g. "https://work.weixin.qq.com".
# Everything else, and every non-widget page, refuses to be framed.
WIDGET_FRAME_ANCESTORS = env_list("WIDGET_FRAME_ANCESTORS", "")
# Bursts of changes to one topic within this window reach each open page as one update.
LIVE_COALESCE_SECONDS = env_float("LIVE_COALESCE_SECONDS", 0.2)
# An open page's access is checked again on every push, against a verdict at most this old.
LIVE_RECHECK_SECONDS = env_float("LIVE_RECHECK_SECONDS", 1)
# Presence (who is looking at a board): each open socket refreshes its rows this often; rows not
# refreshed for three beats belong to a process that died and are swept (beat, every beat interval).
PRESENCE_HEARTBEAT_SECONDS = env_float("PRESENCE_HEARTBEAT_SECONDS", 30)
LINK_TOKEN_MAX_AGE = env_int("LINK_TOKEN_MAX_AGE", 72 * 3600)
# A tapped card link grants its one page (a link session) for this long, never a sign-in.
LINK_SESSION_SECONDS = env_int("LINK_SESSION_SECONDS", 600)
INTAKE_MAX_BODY_BYTES = 256 * 1024
# IM platform callbacks (button presses, messages to the bot) are small; anything larger is refused (413).
CALLBACK_MAX_BODY_BYTES = env_int("CALLBACK_MAX_BODY_BYTES", 256 * 1024)
INTAKE_TOLERANCE_SECONDS = 5 * 60
DEV_INBOX_ENABLED = env_bool("DEV_INBOX_ENABLED", default=DEBUG)
# The dev inbox plays everyone's phone: it refuses to serve on anything but loopback unless forced.
DEV_INBOX_ALLOW_REMOTE = env_bool("DEV_INBOX_ALLOW_REMOTE", default=False)
DEMO_ERP_ENABLED = env_bool("DEMO_ERP_ENABLED", default=DEBUG)
IM_ADAPTERS = env_list("IM_ADAPTERS", "devinbox" if DEV_INBOX_ENABLED else "")
WRITEBACK_MAX_ATTEMPTS = env_int("WRITEBACK_MAX_ATTEMPTS", 8)
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 8)
RETRY_BASE_SECONDS = env_float("RETRY_BASE_SECONDS", 2)

# --- ERP connectors ---
# Credentials of configured ERP connections (Tryton) are encrypted at rest with these Fernet keys
# (comma-separated; the first encrypts, all decrypt; `manage.py rotate_connector_keys` re-encrypts).
# Unset: a development key derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")
# Beat runs the poller this often; each connection is polled at its own interval (admin).
ERP_POLL_TICK_SECONDS = env_float("ERP_POLL_TICK_SECONDS", 10)
# A board refetch reads an item's open purchase lines from Tryton (four JSON-RPC calls); every open
# board refetches at each push, so the lines are cached this long (0: never), dropped at once when the
# portal writes one. A change made in Tryton itself shows within this window.
TRYTON_PURCHASE_LINES_CACHE_SECONDS = env_float("TRYTON_PURCHASE_LINES_CACHE_SECONDS", 5)
CELERY_BEAT_SCHEDULE["poll-erp-connectors"] = {
    "task": "erp.tasks.poll_connectors",
    "schedule": ERP_POLL_TICK_SECONDS,
}

# --- IM platform sign-in (allauth) ---
# Sign-in buttons (allauth) and login-free codes inside IM clients (sso/im_login/). Both map the
# platform user to a portal user through sso.ImIdentity (sso/adapters.py); nobody signs up.
# Apps come from these env vars or from "Social applications" in admin.
INSTALLED_APPS += [
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.feishu",
    "allauth.socialaccount.providers.dingtalk",
    "allauth.socialaccount.providers.slack",
    "im.platforms.wecom.signin",  # our allauth provider for WeCom
]
MIDDLEWARE.append("allauth.account.middleware.AccountMiddleware")
MIDDLEWARE.append("sso.views.SocialAppMissingMiddleware")
ACCOUNT_ADAPTER = "sso.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "sso.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # linking by email is sso.im_login.identity's job, per tenant
SOCIALACCOUNT_STORE_TOKENS = False


def _im_app(prefix: str, id_var: str, secret_var: str, **extra: str) -> dict:
    client_id, secret = env_str(f"{prefix}_{id_var}"), env_str(f"{prefix}_{secret_var}")
    if not (client_id and secret):
        return {}
    app_settings = {key: env_str(f"{prefix}_{var}") for key, var in extra.items()}
    return {"APPS": [{"client_id": client_id, "secret": secret, "settings": app_settings}]}


SOCIALACCOUNT_PROVIDERS = {
    name: app
    for name, app in {
        "wecom": _im_app("WECOM", "CORP_ID", "SECRET", agent_id="AGENT_ID"),
        "feishu": _im_app("FEISHU", "APP_ID", "APP_SECRET", tenant="TENANT_KEY"),
        "dingtalk": _im_app("DINGTALK", "CLIENT_ID", "CLIENT_SECRET", tenant="CORP_ID"),
        "slack": _im_app("SLACK", "CLIENT_ID", "CLIENT_SECRET", tenant="TEAM_ID"),
    }.items()
    if app
}
# The sign-in buttons post to /accounts/<provider>/login/, which redirects to the platform; browsers
# apply CSP form-action to that redirect, so the platforms' authorize pages must be allowed.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] += [
    "https://login.work.weixin.qq.com",
    "https://open.weixin.qq.com",
    "https://open.feishu.cn",
    "https://accounts.feishu.cn",
    "https://login.dingtalk.com",
    "https://slack.com",
]

# --- Matrix adapter ---
# Cards to Matrix users (im/platforms/matrix/), as a bot on one homeserver; add "matrix" to IM_ADAPTERS.
# A fixed access token is best: re-login (user + password) reuses one device id, so sends stay
# exactly-once. `manage.py matrix_sync` reads reply commands ("approve") back from the homeserver.
INSTALLED_APPS += ["im.platforms.matrix"]
MATRIX_HOMESERVER_URL = env_str("MATRIX_HOMESERVER_URL").rstrip("/")
MATRIX_BOT_TOKEN = env_str("MATRIX_BOT_TOKEN")
MATRIX_BOT_USER = env_str("MATRIX_BOT_USER")
MATRIX_BOT_PASSWORD = env_str("MATRIX_BOT_PASSWORD")
MATRIX_TIMEOUT = env_float("MATRIX_TIMEOUT", 10)

# --- Slack / Agora / webhook adapters, rate limits ---
# Add "slack", "agora" or "webhook" to IM_ADAPTERS. Callbacks: POST /api/im/<platform>/callback.
# Slack (im/platforms/slack/): a bot token (xoxb-, scopes chat:write im:write groups:write pins:write)
# and the app's signing secret for interactivity and the Events API; SLACK_CLIENT_ID etc. above are sign-in.
SLACK_BOT_TOKEN = env_str("SLACK_BOT_TOKEN")
SLACK_SIGNING_SECRET = env_str("SLACK_SIGNING_SECRET")
SLACK_TIMEOUT = env_float("SLACK_TIMEOUT", 10)
# Agora Chat (im/platforms/agora/): REST host, org and app names, the app id and certificate that sign
# app tokens, the bot's user id (sender and group owner) and the callback secret from Agora's console.
AGORA_CHAT_HOST = env_str("AGORA_CHAT_HOST")
AGORA_CHAT_ORG = env_str("AGORA_CHAT_ORG")
AGORA_CHAT_APP = env_str("AGORA_CHAT_APP")
AGORA_APP_ID = env_str("AGORA_APP_ID")
AGORA_APP_CERTIFICATE = env_str("AGORA_APP_CERTIFICATE")
AGORA_CHAT_BOT_USER = env_str("AGORA_CHAT_BOT_USER")
AGORA_CHAT_CALLBACK_SECRET = env_str("AGORA_CHAT_CALLBACK_SECRET")
AGORA_TOKEN_TTL = env_int("AGORA_TOKEN_TTL", 24 * 3600)
AGORA_TIMEOUT = env_float("AGORA_TIMEOUT", 10)
# Generic outgoing webhook (im/platforms/webhook/), signed per Standard Webhooks with a whsec_ secret.
IM_WEBHOOK_URL = env_str("IM_WEBHOOK_URL")
IM_WEBHOOK_SECRET = env_str("IM_WEBHOOK_SECRET")
IM_WEBHOOK_TIMEOUT = env_float("IM_WEBHOOK_TIMEOUT", 10)
# Token buckets per platform (im/ratelimit.py; in Redis when REDIS_URL is set): rate per second, burst,
# one bucket per recipient or per platform. From the platforms' documentation; IM_RATE_LIMITS (JSON)
# replaces entries, e.g. '{"slack": {"rate": 0.5, "burst": 1}}'; a rate of 0 switches a bucket off.
IM_RATE_LIMITS = {
    "slack": {"rate": 1.0, "burst": 1, "scope": "recipient"},  # about 1 message/s per channel
    "feishu": {"rate": 5.0, "burst": 5, "scope": "recipient"},  # 5 per second per user or chat
    "wecom": {"rate": 0.5, "burst": 30, "scope": "recipient"},  # 30 per minute per member
    "agora": {"rate": 100.0, "burst": 100, "scope": "platform"},  # 100 requests/s per app key
}
IM_RATE_LIMITS.update(env_json_object("IM_RATE_LIMITS"))
IM_RATE_LIMIT_PREFIX = env_str("IM_RATE_LIMIT_PREFIX", "portal:ratelimit")

# --- WeCom / Feishu / DingTalk adapters ---
# Add "wecom", "feishu" or "dingtalk" to IM_ADAPTERS. App credentials are the sign-in ones above (WECOM_CORP_ID,
# WECOM_SECRET, WECOM_AGENT_ID; FEISHU_APP_ID, FEISHU_APP_SECRET; DINGTALK_CLIENT_ID = app key,
# DINGTALK_CLIENT_SECRET, DINGTALK_CORP_ID), and their tokens are shared with sign-in through the cache.
# Callbacks: POST (WeCom also GET) /api/im/<platform>/callback, with the callback secrets below.
WECOM_TOKEN = env_str("WECOM_TOKEN")  # 接收消息 › Token
WECOM_AES_KEY = env_str("WECOM_AES_KEY")  # 接收消息 › EncodingAESKey (43 characters)
FEISHU_ENCRYPT_KEY = env_str("FEISHU_ENCRYPT_KEY")  # 事件与回调 › Encrypt Key (signs and encrypts)
FEISHU_VERIFICATION_TOKEN = env_str("FEISHU_VERIFICATION_TOKEN")
DINGTALK_AGENT_ID = env_str("DINGTALK_AGENT_ID")  # work notifications are sent as this app
DINGTALK_TOKEN = env_str("DINGTALK_TOKEN")  # 事件订阅 › token
DINGTALK_AES_KEY = env_str("DINGTALK_AES_KEY")  # 事件订阅 › aes_key (43 characters)
# A signed callback older (or newer) than this is refused as a replay; requests to the platforms time out.
IM_CALLBACK_MAX_AGE = env_int("IM_CALLBACK_MAX_AGE", 300)
IM_PLATFORM_TIMEOUT = env_float("IM_PLATFORM_TIMEOUT", 10)

# --- Bot ---
# The chat bot (bot/): a deterministic parser answers from the mirrored ERP data through the same
# selectors as the pages. Follow-up questions ("那项目B呢?") reuse the last question for this long.
INSTALLED_APPS += ["bot"]
BOT_CONTEXT_SECONDS = env_int("BOT_CONTEXT_SECONDS", 300)
# Optional model backend for questions the parser does not understand: any OpenAI-compatible
# chat-completions endpoint (base URL, e.g. https://llm.example.com/v1). Off while unset.
BOT_MODEL_URL = env_str("BOT_MODEL_URL")
BOT_MODEL_NAME = env_str("BOT_MODEL_NAME")
BOT_MODEL_API_KEY = env_str("BOT_MODEL_API_KEY")
BOT_MODEL_TIMEOUT = env_float("BOT_MODEL_TIMEOUT", 5)
# Bot exchanges (questions, answers) older than this are deleted by `manage.py purge_bot_exchanges`.
BOT_RETENTION_DAYS = env_int("BOT_RETENTION_DAYS", 90)

# --- OIDC sign-in ---
# Enterprise single sign-on with OpenID Connect (sso/oidc.py). Off unless OIDC_ISSUER is set: then the
# endpoints and the signing algorithm come from <issuer>/.well-known/openid-configuration.
OIDC_ISSUER = env_str("OIDC_ISSUER")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")  # add "groups" where the IdP needs it
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO")  # empty: the provider's best, from discovery
OIDC_LEEWAY_SECONDS = env_int("OIDC_LEEWAY_SECONDS", 60)  # clock skew allowed on iat/exp
OIDC_USER_POLICY = env_choice("OIDC_USER_POLICY", "link_verified_email", ("auto_create", "link_verified_email", "deny"))
OIDC_DISCOVERY_TTL = env_int("OIDC_DISCOVERY_TTL", 3600)
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10)
OIDC_USE_PKCE = True
OIDC_TOKEN_USE_BASIC_AUTH = True  # client_secret_basic, the OpenID Connect default
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:oidc-callback"
if OIDC_ENABLED:
    if not (OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET):
        raise ImproperlyConfigured("OIDC_ISSUER is set: OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed too")
    AUTHENTICATION_BACKENDS.append("sso.oidc.PortalOIDCBackend")

# --- Production hardening ---
# Also what `check --deploy` asks for.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and env_bool("HTTPS", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging ---
# One JSON object per line (LOG_FORMAT=json, the default unless DEBUG) or a readable line (plain, the
# default with DEBUG); both carry request_id and event_id and redact secrets
# (portal/observability/logging.py). `make demo` sets DEMO_CONSOLE=1: a quiet console with one short
# line per loop step (event in, card sent, decision, written back) and warnings; LOG_LEVEL=DEBUG or
# an explicit LOG_FORMAT brings the full log back.
DEMO_CONSOLE = env_bool("DEMO_CONSOLE", default=False)
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_choice("LOG_FORMAT", "plain" if DEBUG or DEMO_CONSOLE else "json", ("json", "plain"))
_LOOP_STEPS_ONLY = DEMO_CONSOLE and LOG_LEVEL != "DEBUG" and not env_str("LOG_FORMAT")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"ids": {"()": "portal.observability.logging.ContextFilter"}},
    "formatters": {
        "plain": {"()": "portal.observability.logging.PlainFormatter"},
        "json": {"()": "portal.observability.logging.JsonFormatter"},
        "step": {"()": "portal.observability.logging.StepFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["ids"]},
        "steps": {"class": "logging.StreamHandler", "formatter": "step", "filters": ["ids"]},
    },
    "root": {"handlers": ["console"], "level": "WARNING" if _LOOP_STEPS_ONLY else LOG_LEVEL},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # httpx logs every request URL at INFO; WeCom and DingTalk put app secrets in the query.
        "httpx": {"level": "WARNING"},
        **(
            {  # the demo's loop steps, one short line each, on their own handler
                name: {"level": "INFO", "handlers": ["steps"], "propagate": False}
                for name in ("portal.flow", "erp.intake")
            }
            if _LOOP_STEPS_ONLY
            else {}
        ),
    },
}

# --- Notifications ---
# Notification rules, group chats and the five scenarios (notifications/): rules run after each
# ERP event's own handler; the beat tick releases held cards, sends digests, reminds and escalates.
INSTALLED_APPS += ["notifications"]
CELERY_BEAT_SCHEDULE["notifications-tick"] = {
    "task": "notifications.tasks.tick",
    "schedule": env_float("NOTIFICATIONS_TICK_SECONDS", 300),
}

# --- Trust ---
# Hash-chained audit trail, retention and legal holds, encrypted personal data (trust/).
INSTALLED_APPS += ["trust", "axes"]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT failed password sign-ins for one username
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES (429); a success resets the count.
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"  # a page in the reader's language, not bare text
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit chain already
# Behind the TLS proxy the client address is the first X-Forwarded-For hop (HTTPS=1, as above).
AXES_IPWARE_PROXY_COUNT = 1 if env_bool("HTTPS", default=False) else None
# API rate limits per token (or per signed-in user); signed webhooks (ERP intake, IM callbacks) are
# not throttled here: they are verified by signature and bounded by size.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["trust.throttling.CredentialRateThrottle"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"credential": env_str("API_RATE_LIMIT", "600/min")}
CACHES["throttle"] = (
    {**CACHES["default"], "KEY_PREFIX": env_str("CACHE_PREFIX", "portal") + ":throttle"}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
)
# Retention: beat destroys what the policies (admin) say is due, in bounded batches, this often.
CELERY_BEAT_SCHEDULE["trust-retention"] = {
    "task": "trust.tasks.run_retention",
    "schedule": env_float("RETENTION_TICK_SECONDS", 3600),
}
# Personal data (IM identities' email and mobile) is encrypted with FIELD_ENCRYPTION_KEYS (above) and
# found through an HMAC-SHA256 digest under this key (unset: derived from SECRET_KEY; changing it needs
# `manage.py rotate_keys`, which recomputes the digests).
FIELD_DIGEST_KEY = env_str("FIELD_DIGEST_KEY")
# Anchoring: `manage.py anchor_audit` appends the audit chain's head to this file (keep it on
# write-once storage, away from the database's writers); beat does it every AUDIT_ANCHOR_SECONDS.
# `manage.py verify_audit --anchors FILE` then also catches a chain rewritten with recomputed hashes.
AUDIT_ANCHOR_FILE = env_str("AUDIT_ANCHOR_FILE")
if AUDIT_ANCHOR_FILE:
    CELERY_BEAT_SCHEDULE["trust-anchor"] = {
        "task": "trust.tasks.anchor_audit",
        "schedule": env_float("AUDIT_ANCHOR_SECONDS", 86400),
    }

# --- Observability ---
# Request ids (X-Request-ID in and out) and event ids in every log line, Prometheus metrics at
# /metrics, dependency checks at /readyz (portal/observability/, docs/architecture.md).
INSTALLED_APPS += ["django_prometheus"]
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "portal.observability.middleware.RequestIdMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the view's response
]
# Query counts and latencies per database (django_prometheus_db_*): the same backends, instrumented.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)
# /metrics answers a bearer token equal to METRICS_TOKEN, or a direct (not proxied) connection from
# METRICS_ALLOWED_IPS (addresses or networks, comma-separated); everyone else gets 403.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "")
# Several processes (Daphne, Celery workers): PROMETHEUS_MULTIPROC_DIR, read by prometheus_client
# from the environment itself (docs/architecture.md "Observability").
# Each /readyz check (database, channel layer, Redis, Celery broker) gives up after this many seconds (at most 2).
READYZ_TIMEOUT = min(env_float("READYZ_TIMEOUT", 2), 2.0)
# Celery workers log through LOGGING above (JSON, ids) instead of replacing the root logger's handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Foresight ---
# Demand forecasts and restock suggestions, late-payment risk, unusual expenses (foresight/): trained
# and scored by beat jobs (times in UTC; 18:00 UTC is 02:00 in Shanghai), never in a request.
INSTALLED_APPS += ["foresight"]
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE["foresight-nightly"] = {
    "task": "foresight.tasks.nightly",
    "schedule": crontab(hour=env_str("FORESIGHT_NIGHTLY_HOUR_UTC", "18"), minute=0),
}
CELERY_BEAT_SCHEDULE["foresight-risk-digest"] = {
    "task": "foresight.tasks.risk_digest",
    "schedule": crontab(day_of_week=env_str("FORESIGHT_DIGEST_DAY", "mon"),
                        hour=env_str("FORESIGHT_DIGEST_HOUR_UTC", "0"), minute=30),
}
FORESIGHT_SERVICE_LEVEL = env_float("FORESIGHT_SERVICE_LEVEL", 0.95)  # chance of no stock-out
FORESIGHT_REVIEW_WEEKS = env_float("FORESIGHT_REVIEW_WEEKS", 2)  # cover beyond the lead time
FORESIGHT_HISTORY_WEEKS = env_int("FORESIGHT_HISTORY_WEEKS", 104)
FORESIGHT_HORIZON_WEEKS = env_int("FORESIGHT_HORIZON_WEEKS", 12)
# The nightly job refits only series whose weekly history changed (or older than this), at most N per run.
FORESIGHT_REFIT_DAYS = env_int("FORESIGHT_REFIT_DAYS", 7)
FORESIGHT_MAX_SERIES_PER_RUN = env_int("FORESIGHT_MAX_SERIES_PER_RUN", 1000)
FORESIGHT_RESTOCK_MAX_CARDS = env_int("FORESIGHT_RESTOCK_MAX_CARDS", 5)  # new cards per run
FORESIGHT_RESTOCK_ROLES = env_list("FORESIGHT_RESTOCK_ROLES", "buyer")
FORESIGHT_DISMISS_DAYS = env_int("FORESIGHT_DISMISS_DAYS", 14)  # no new suggestion after a dismissal
FORESIGHT_RISK_THRESHOLD = env_float("FORESIGHT_RISK_THRESHOLD", 0.75)  # alert when crossed
FORESIGHT_RISK_MAX_ALERTS = env_int("FORESIGHT_RISK_MAX_ALERTS", 3)  # per run; the digest has the rest
FORESIGHT_DIGEST_MIN = env_float("FORESIGHT_DIGEST_MIN", 0.3)  # listed in the weekly digest
FORESIGHT_RISK_ROLES = env_list("FORESIGHT_RISK_ROLES", "finance_manager")  # besides the customer's sales rep
FORESIGHT_EXPENSE_FLAG_SCORE = env_float("FORESIGHT_EXPENSE_FLAG_SCORE", 3)  # robust z
FORESIGHT_EXPENSE_REVIEW_SCORE = env_float("FORESIGHT_EXPENSE_REVIEW_SCORE", 4.5)  # review group

# --- Group boards ---
# The live board of each temporary group (/g/<group>/), actions on ERP objects from it, and guest
# passes for external members invited by email (boards/). Email: SMTP from the environment; with the
# dev inbox on and no EMAIL_HOST, mail lands in the dev mailbox page (/dev/mail/) instead.
INSTALLED_APPS += ["boards"]
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "") or (
    "boards.devmail.DevMailBackend" if DEV_INBOX_ENABLED and not EMAIL_HOST
    else "django.core.mail.backends.smtp.EmailBackend")

CELERY_BEAT_SCHEDULE["boards-presence-sweep"] = {
    "task": "boards.tasks.sweep_presence",
    "schedule": PRESENCE_HEARTBEAT_SECONDS,
}

