from connectors.tiktok_shop.signing import sign, verify_webhook, webhook_signature


def test_sign_matches_the_official_worked_example():
    query = {"app_key": "29a39d", "timestamp": "1623812664"}
    assert sign("e59af819cc", "/authorization/202309/shops", query) == (
        "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"
    )


def test_sign_ignores_sign_and_access_token_and_param_order():
    base = sign("secret", "/p", {"b": "2", "a": "1"})
    assert sign("secret", "/p", {"a": "1", "b": "2", "sign": "x", "access_token": "t"}) == base


def test_sign_covers_path_params_and_body():
    base = sign("secret", "/p", {"a": "1"}, b'{"x":1}')
    assert sign("secret", "/q", {"a": "1"}, b'{"x":1}') != base
    assert sign("secret", "/p", {"a": "2"}, b'{"x":1}') != base
    assert sign("secret", "/p", {"a": "1"}, b'{"x":2}') != base
    assert sign("other", "/p", {"a": "1"}, b'{"x":1}') != base


def test_webhook_verification_accepts_the_right_signature_only():
    body = b'{"type":12,"tts_notification_id":"n1"}'
    good = webhook_signature("key", "secret", body)
    assert verify_webhook("key", "secret", body, good)
    assert verify_webhook("key", "secret", body, good.upper())
    assert not verify_webhook("key", "secret", body + b" ", good)
    assert not verify_webhook("key", "wrong", body, good)
    assert not verify_webhook("key", "secret", body, "")
