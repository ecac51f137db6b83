"""Signing in: create an account, stay in across reloads, log out, a wrong password, log in."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from e2e.support import PHONE, assert_readable, begins_with
from e2e.ui import alerts, button, check_a11y, field, shoot
from support.api import unique_handle


def test_signin(make_person) -> None:
    carol = make_person("Carol", PHONE, login=None, register=False)
    page = carol.page
    carol.goto("/")

    # A stranger gets the sign-in form.
    expect(field(page, "Handle")).to_be_visible()
    expect(field(page, "Password")).to_be_visible()
    expect(button(page, "Log in")).to_be_visible()
    check_a11y(page, "the sign-in page")
    shoot(page, "signin")
    page.emulate_media(color_scheme="dark")
    check_a11y(page, "the sign-in page, dark")
    shoot(page, "signin-dark")
    page.emulate_media(color_scheme="light")

    # "Create account" shows the registration form; no invite field on an open server.
    create = page.get_by_role("button", name=begins_with("Create account")).or_(
        page.get_by_role("link", name=begins_with("Create account"))
    )
    carol.press(create.first)
    expect(field(page, "Display name")).to_be_visible()
    expect(field(page, "Invite code")).to_have_count(0)
    handle, password = unique_handle("carol"), "correct horse battery staple"
    field(page, "Handle").fill(handle)
    field(page, "Display name").fill("Carol")
    field(page, "Password").fill(password)
    check_a11y(page, "the registration form")
    shoot(page, "register")
    # The form's own button (a "Create account" tab may stay above the form).
    carol.press(button(page, "Create account").last)
    expect(carol.chat_list).to_be_visible()
    expect(carol.chat_link("Message yourself")).to_be_visible()
    shoot(page, "chats-new-account")

    # A reload keeps her in.
    page.reload()
    expect(carol.chat_list).to_be_visible()
    expect(button(page, "Log in")).to_have_count(0)

    # The session is an HttpOnly cookie that outlives the browser, and scripts cannot read it.
    cookies = carol.context.cookies(carol.server.url)
    session = [c for c in cookies if c.get("httpOnly")]
    assert session, f"no HttpOnly session cookie after registering: {cookies}"
    day = 24 * 3600
    assert all(c.get("expires", -1) > time.time() + day for c in session), (
        f"the session cookie ends with the browser, so a restart logs Carol out: {session}"
    )
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    for cookie in session:
        if len(cookie["value"]) >= 16:
            assert cookie["value"] not in stored, "the session secret is kept in web storage"

    # Log out from the settings.
    carol.press(button(page, "Settings"))
    carol.press(button(page, "Log out"))
    expect(button(page, "Log in")).to_be_visible()
    expect(carol.chat_list).to_have_count(0)

    # A wrong password is refused in words.
    field(page, "Handle").fill(handle)
    field(page, "Password").fill("not my password")
    carol.press(button(page, "Log in"))
    alert = alerts(page).first
    expect(alert).to_be_visible()
    assert_readable(alert.inner_text(), about="the wrong-password alert")
    expect(carol.chat_list).to_have_count(0)
    shoot(page, "signin-wrong-password")

    # The right one lets her in.
    field(page, "Handle").fill(handle)
    field(page, "Password").fill(password)
    carol.press(button(page, "Log in"))
    expect(carol.chat_list).to_be_visible()
    expect(carol.chat_link("Message yourself")).to_be_visible()
