"""Where `ship` tells Heroku to fetch source from, for a private repository.

Heroku fetches `source_blob.url` itself and sends no credentials, so a private tarball
needs a URL that carries its own short-lived grant. GitHub's API answers
`GET /repos/OWNER/REPO/tarball/REF` with a redirect to exactly that, given the token; the
bot asks once, without following the redirect, and hands Heroku the `Location`. The token
goes only to the source host and never into a message or a log line.
"""

from __future__ import annotations

import logging

import requests

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 15.0)


class SourceError(Exception):
    """The source could not be resolved; `str(error)` is a sentence fit for Slack."""


def signed_url(url: str, token: str) -> str:
    """The short-lived URL the source host redirects `url` to when shown `token`."""
    session = requests.Session()
    session.trust_env = False  # a stray .netrc must not replace the token
    try:
        response = session.get(
            url,
            headers={"Authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=TIMEOUT,
            stream=True,  # a 200 would be the tarball itself: do not download it
        )
        response.close()
    except requests.RequestException as error:
        log.warning("source host unreachable", extra={"error": type(error).__name__})
        raise SourceError("The source host could not be reached. Try again in a minute.") from None
    finally:
        session.close()
    location = response.headers.get("Location")
    if response.is_redirect and location:
        return location
    if response.status_code in (401, 403, 404):
        raise SourceError(
            f"The source host answered {response.status_code}: that ref does not exist, or "
            "the token cannot read the repository."
        )
    raise SourceError(
        f"The source host answered {response.status_code} without a redirect, so Heroku "
        "could not fetch it: use a URL that redirects, such as GitHub's "
        "`https://api.github.com/repos/OWNER/REPO/tarball/{ref}`."
    )
