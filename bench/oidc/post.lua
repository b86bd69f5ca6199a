-- wrk script of bench/oidc.sh: the same form POST on every request.
--   OIDC_WRK_BODY  the urlencoded body, e.g. grant_type=client_credentials
--   OIDC_WRK_AUTH  the Authorization header (client_secret_basic)
-- No request/response callbacks: wrk sends one prepared request, as fast as for a GET.
wrk.method = "POST"
wrk.body = os.getenv("OIDC_WRK_BODY") or ""
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("OIDC_WRK_AUTH")
