from allauth.urls import build_provider_urlpatterns
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from approvals import api as approvals_api
from bot import api as bot_api
from erp import views as erp_views
from portal import views
from portal.observability import views as observability_views
from sso import views as sso_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="approvals:mine", permanent=False)),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", observability_views.metrics, name="metrics"),  # METRICS_TOKEN / METRICS_ALLOWED_IPS
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # IM sign-in buttons (allauth): the providers' login/callback views. allauth's own cancelled, error
    # and sign-up pages need its account URLs (not installed: password sign-in is Django's), so ours
    # answer under their names; ``account_login`` is Django's sign-in page for allauth's redirects.
    path("accounts/login/", auth_views.LoginView.as_view(), name="account_login"),
    path("accounts/", include(build_provider_urlpatterns())),
    path("accounts/3rdparty/login/cancelled/", sso_views.im_sign_in_cancelled, name="socialaccount_login_cancelled"),
    path("accounts/3rdparty/login/error/", sso_views.im_sign_in_error, name="socialaccount_login_error"),
    path("accounts/3rdparty/signup/", sso_views.im_sign_up_closed, name="socialaccount_signup"),
    # Nobody connects extra accounts here (IM identities are linked by admins); allauth's redirect target.
    path("accounts/3rdparty/", RedirectView.as_view(pattern_name="approvals:mine"), name="socialaccount_connections"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("sso.urls")),
    path("approvals/", include("approvals.urls")),
    path("w/", include("widgets.urls")),
    path("notifications/", include("notifications.urls")),
    path("g/", include("boards.urls")),  # group boards: members and invited guests
    path("foresight/", include("foresight.urls")),
    # Integration API
    path("api/erp/<slug:connector>/events", erp_views.EventIntakeView.as_view(), name="erp-intake"),
    path("api/im/", include("im.urls")),  # IM platform callbacks: /api/im/<platform>/callback
    path("api/events/", erp_views.event_types, name="event-types"),
    path("api/approvals/pending/", approvals_api.PendingList.as_view(), name="api-pending"),
    path("api/approvals/<int:pk>/", approvals_api.DocumentDetail.as_view(), name="api-document"),
    path("api/approvals/<int:pk>/decision", approvals_api.Decide.as_view(), name="api-decide"),
    path("api/bot/ask", bot_api.Ask.as_view(), name="api-bot-ask"),
    path("api/bot/exchanges/<int:pk>/actions/<slug:action_id>", bot_api.Action.as_view(), name="api-bot-action"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]

if settings.DEV_INBOX_ENABLED:
    urlpatterns.append(path("dev/inbox/", include("im.platforms.devinbox.urls")))
    urlpatterns.append(path("dev/mail/", include("boards.devmail_urls")))
if settings.DEMO_ERP_ENABLED:
    urlpatterns.append(path("erp/demo/", include("erp.connectors.demo.urls")))

# Unknown /api/ URLs, unreadable requests and API crashes answer problem+json; pages keep Django's own error pages.
handler400 = "portal.api.bad_request"
handler404 = "portal.api.page_not_found"
handler500 = "portal.api.server_error"
