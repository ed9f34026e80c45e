import pytest

from handlers.common import plain_text, user_id_from_mention


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("Acme &amp; Co", "Acme & Co"),
        ("<!channel> *Acme*", "@channel *Acme*"),
        ("&lt;!channel&gt; hi", "<!channel> hi"),
        ("with <@U123|ana>", "with @ana"),
        ("see <#C1|general>", "see #general"),
        ("<mailto:ana@p.com|ana@p.com>", "ana@p.com"),
        ("<https://x.io|site>", "site (https://x.io)"),
        ("go to <http://x.io|x.io>", "go to x.io"),  # an address typed in a command, as typed
    ],
)
def test_plain_text_undoes_slack_formatting(raw: str, plain: str) -> None:
    assert plain_text(raw) == plain


def test_user_mentions() -> None:
    assert user_id_from_mention("<@U0ABC|ana>") == "U0ABC"
    assert user_id_from_mention("<@W0ABC>") == "W0ABC"
    assert user_id_from_mention("@ana") is None
