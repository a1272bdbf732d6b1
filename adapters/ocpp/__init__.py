"""OCPP 1.6J / 2.0.1 adapter: the bridge is the CSMS that chargers connect to.

Configuration (one charger = one connector in 1.6, one EVSE in 2.0.1)::

    chargers:
      - id: garage-left
        adapter:
          type: ocpp
          charge_point_id: CP-0042        # the last path segment the box connects to
          connector_id: 1
          vendor_profile: generic         # mappings/ocpp/<name>.yaml
          password: "per-box-secret-1"    # basic auth (security profiles 1, 2); optional on profile 0
          phases: 3
          max_current_a: 16
          proxy:                          # optional: keep the box's own back end
            upstream_url: wss://backend.example/ocpp
          server:                         # optional; see below
            host: 0.0.0.0
            port: 9000
            security_profile: 0           # 0, 1 (basic auth), 2 (TLS), 3 (TLS + client certificates)
            tls_cert: /etc/evbridge/csms.crt
            tls_key: /etc/evbridge/csms.key
            tls_client_ca: /etc/evbridge/charger-ca.crt

There is exactly one CSMS server per bridge.  Its settings come from
`AdapterDeps.options` when the runtime passes adapter-wide options, else from
the `server:` block of the first OCPP charger; every other charger may repeat
the same block or leave it out, and a different block is a ConfigError.  Only
configured charge point ids get in (allow-list); others are refused with HTTP
404 and logged.  Chargers sharing a `charge_point_id` share its connection.

Modules: `rpc` (sans-I/O OCPP-J framing and error codes), `translate` (pure
OCPP → canonical model), `profiles` and `strategy` (pure limit arithmetic and
decisions), `vendor` (mapping files), `security` (handshake rules), `link`
(one socket's owner tasks), `session` (handlers per connected charge point),
`server` (websockets server, proxy upstream), `charger` (the `Charger` port),
`factory` (entry point).
"""
