"""Login-free ("免登") sign-in inside IM clients: a code from the platform, exchanged server-side.

One small module per platform behind ``base.LoginFreeExchange``; ``identity.resolve()`` maps the
platform user to a portal user through ``sso.models.ImIdentity``; ``views.login_free`` ties them.
"""
