"""Notifications: routing rules that send alerts to chat, e-mail and webhooks through Apprise.

Rules (`rules`) live in the database and say which alerts go where; the
`Notifier` (`router`) matches alerts to rules, suppresses repeats (cooldown,
dedupe) and delivers with retries, writing every outcome to the delivery log
(`deliveries`). It runs off the detection hot path, either as a background
worker fed by a live sink (`background`) or as the standalone runner that
follows the store (`runner`, `tapewatch notify run`). Destinations carry
secrets, so they are only ever shown masked (`destinations`).
"""
