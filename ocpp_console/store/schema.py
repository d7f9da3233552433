"""The database schema as an ordered list of migrations; PRAGMA user_version is the index reached.

Never edit a migration that has shipped: append a new one, so a database made by an older
version opens in a newer one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the central system's first schema
    """
    CREATE TABLE chargers (
        id TEXT PRIMARY KEY,
        registration TEXT NOT NULL DEFAULT 'Pending',   -- Accepted | Pending | Rejected
        vendor TEXT, model TEXT,
        charge_point_serial TEXT, charge_box_serial TEXT,
        firmware_version TEXT, iccid TEXT, imsi TEXT,
        meter_type TEXT, meter_serial TEXT,
        note TEXT,
        password_hash TEXT,
        connected INTEGER NOT NULL DEFAULT 0,
        remote_address TEXT,
        first_seen TEXT, last_seen TEXT, last_boot TEXT,
        firmware_status TEXT, firmware_status_at TEXT,
        diagnostics_status TEXT, diagnostics_status_at TEXT,
        local_list_version INTEGER,
        config_fetched_at TEXT
    );

    CREATE TABLE connectors (
        charger_id TEXT NOT NULL REFERENCES chargers(id) ON DELETE CASCADE,
        connector_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NOT NULL DEFAULT 'NoError',
        info TEXT, vendor_id TEXT, vendor_error_code TEXT,
        status_timestamp TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, connector_id)
    );

    CREATE TABLE status_history (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NOT NULL,
        info TEXT, vendor_id TEXT, vendor_error_code TEXT,
        status_timestamp TEXT,
        received_at TEXT NOT NULL
    );
    CREATE INDEX status_history_charger ON status_history(charger_id, id);

    CREATE TABLE id_tags (
        id_tag TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'Accepted',       -- Accepted | Blocked | Expired | Invalid
        expiry_date TEXT,
        parent_id_tag TEXT,
        balance INTEGER NOT NULL DEFAULT 0,            -- minor currency units (the wallet issue)
        note TEXT,
        created_at TEXT NOT NULL
    );

    -- AUTOINCREMENT: a transactionId is never handed out twice in the database's life.
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        id_tag TEXT NOT NULL,
        auth_status TEXT NOT NULL,                     -- idTagInfo.status answered at start
        meter_start INTEGER NOT NULL,
        start_timestamp TEXT NOT NULL,                 -- charger's time, UTC
        start_timestamp_raw TEXT NOT NULL,             -- as sent, for deduplication
        reservation_id INTEGER,
        started_at TEXT NOT NULL,                      -- our receive time
        meter_stop INTEGER,
        stop_timestamp TEXT,
        stop_reason TEXT,
        stop_id_tag TEXT,
        stopped_at TEXT,
        energy_wh INTEGER,
        flags TEXT NOT NULL DEFAULT ''                 -- comma-separated anomalies
    );
    CREATE UNIQUE INDEX transactions_dedup
        ON transactions(charger_id, connector_id, id_tag, start_timestamp_raw, meter_start);
    CREATE INDEX transactions_running ON transactions(id_tag) WHERE stopped_at IS NULL;
    CREATE INDEX transactions_charger ON transactions(charger_id, id);

    -- StopTransaction naming a transaction we never started: kept, flagged, answered normally.
    CREATE TABLE unknown_stops (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        transaction_id INTEGER NOT NULL,
        meter_stop INTEGER NOT NULL,
        stop_timestamp TEXT NOT NULL,
        stop_reason TEXT,
        id_tag TEXT,
        received_at TEXT NOT NULL,
        payload TEXT NOT NULL
    );

    CREATE TABLE meter_values (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        transaction_id INTEGER,                        -- as the charger sent it
        unknown_transaction INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,                          -- MeterValues | StopTransaction
        timestamp TEXT NOT NULL,
        measurand TEXT NOT NULL,
        phase TEXT, unit TEXT NOT NULL, context TEXT NOT NULL,
        location TEXT NOT NULL, format TEXT NOT NULL,
        value TEXT NOT NULL,                           -- exactly as sent
        value_num REAL,                                -- parsed number in the base unit (Wh, W, ...)
        received_at TEXT NOT NULL
    );
    CREATE INDEX meter_values_tx ON meter_values(transaction_id);
    CREATE INDEX meter_values_charger ON meter_values(charger_id, connector_id, id);

    CREATE TABLE data_transfers (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        direction TEXT NOT NULL,                       -- in (from charger) | out
        vendor_id TEXT NOT NULL, message_id TEXT, data TEXT,
        status TEXT, response_data TEXT,
        created_at TEXT NOT NULL
    );

    -- Diagnostics/Firmware/Security/Log notifications, one row each.
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        action TEXT NOT NULL,
        status TEXT,
        payload TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX notifications_charger ON notifications(charger_id, id);

    CREATE TABLE message_log (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        direction TEXT NOT NULL,                       -- in | out
        timestamp TEXT NOT NULL,
        message_type INTEGER,                          -- 2 CALL, 3 CALLRESULT, 4 CALLERROR, NULL unparsable
        unique_id TEXT,
        action TEXT,
        raw TEXT NOT NULL
    );
    CREATE INDEX message_log_charger ON message_log(charger_id, id);

    CREATE TABLE configuration (
        charger_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        readonly INTEGER NOT NULL DEFAULT 0,
        known INTEGER NOT NULL DEFAULT 1,              -- 0: listed in unknownKey
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, key)
    );

    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY,                        -- the reservationId sent to the charger
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        id_tag TEXT NOT NULL,
        parent_id_tag TEXT,
        expiry_date TEXT NOT NULL,
        status TEXT NOT NULL,                          -- ReserveNow answer, then Cancelled | Used | Expired
        transaction_id INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );

    CREATE TABLE charging_profiles (
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        profile_id INTEGER NOT NULL,
        stack_level INTEGER NOT NULL,
        purpose TEXT NOT NULL,
        profile TEXT NOT NULL,                         -- the csChargingProfiles JSON
        status TEXT NOT NULL,
        set_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, connector_id, profile_id)
    );

    -- Every operator command and its outcome.
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        action TEXT NOT NULL,
        request TEXT NOT NULL,
        outcome TEXT NOT NULL,                         -- ok | callerror | timeout | offline | invalid
        response TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT NOT NULL
    );
    CREATE INDEX commands_charger ON commands(charger_id, id);
    """,
    # 2: the console reads meter values by time: site-power history, a charger's charts
    """
    CREATE INDEX meter_values_power_time ON meter_values(timestamp) WHERE measurand = 'Power.Active.Import';
    DROP INDEX meter_values_charger;
    CREATE INDEX meter_values_charger_time ON meter_values(charger_id, timestamp);
    """,
    # 3: tariffs, settlement and wallets
    """
    ALTER TABLE transactions ADD COLUMN tariff TEXT;                 -- snapshot in force at the start
    ALTER TABLE transactions ADD COLUMN currency TEXT;
    ALTER TABLE transactions ADD COLUMN cost_items TEXT;             -- {"energy": minor, "time": ..., ...}
    ALTER TABLE transactions ADD COLUMN cost_total INTEGER;          -- minor units
    ALTER TABLE transactions ADD COLUMN charging_seconds INTEGER;
    ALTER TABLE transactions ADD COLUMN idle_seconds INTEGER;
    ALTER TABLE transactions ADD COLUMN meter_register_wh INTEGER;   -- last register in the meter values
    ALTER TABLE transactions ADD COLUMN energy_discrepancy_wh INTEGER;
    ALTER TABLE transactions ADD COLUMN wallet_id_tag TEXT;          -- whose wallet paid

    -- Every wallet movement; id_tags.balance always equals the sum of a wallet's rows.
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY,
        id_tag TEXT NOT NULL,
        amount INTEGER NOT NULL,                                     -- minor units, + credit, - debit
        currency TEXT NOT NULL,
        kind TEXT NOT NULL,                                          -- topup | charge | refund | adjustment
        transaction_id INTEGER,
        reason TEXT,
        balance_after INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX ledger_charge_once ON ledger(transaction_id) WHERE kind = 'charge';
    CREATE INDEX ledger_tag ON ledger(id_tag, id);
    CREATE INDEX transactions_stopped ON transactions(stopped_at);
    """,
    # 4: a MeterValues resent after its answer was lost (a crash between commit and answer) is stored once
    """
    DELETE FROM meter_values WHERE id NOT IN (
        SELECT min(id) FROM meter_values GROUP BY charger_id, connector_id, coalesce(transaction_id, -1), timestamp,
               measurand, coalesce(phase, ''), location, context, value, source
    );
    CREATE UNIQUE INDEX meter_values_once ON meter_values(
        charger_id, connector_id, coalesce(transaction_id, -1), timestamp, measurand, coalesce(phase, ''),
        location, context, value, source
    );
    """,
    # 5: a new AuthorizationKey the charger accepted, valid beside the old one until it is used
    """
    ALTER TABLE chargers ADD COLUMN pending_password_hash TEXT;
    """,
    # 6: tariffs provisioned from the shell; a key left NULL falls through to the settings
    """
    CREATE TABLE tariffs (
        scope TEXT PRIMARY KEY,                        -- '*' the site, else a charger id
        currency TEXT,
        price_per_kwh TEXT,                            -- exact decimals as text, never REAL
        price_per_minute TEXT,
        idle_price_per_minute TEXT,
        idle_grace_minutes TEXT,
        session_fee TEXT,
        tou_windows TEXT,                              -- '22:00-06:00=0.20,12:00-14:00=0.25'
        timezone TEXT,
        updated_at TEXT NOT NULL
    );
    """,
    # 7: security per charger: the lowest profile a charger may connect with (raised by provisioning
    # or an accepted ChangeConfiguration SecurityProfile, never lowered by a connection), and the
    # client certificate our operator CA signed for it (SignCertificate)
    """
    ALTER TABLE chargers ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE chargers ADD COLUMN certificate_serial TEXT;        -- hex, as in CertificateHashData
    ALTER TABLE chargers ADD COLUMN certificate_expiry TEXT;        -- notAfter, UTC ISO 8601
    ALTER TABLE chargers ADD COLUMN certificate_pem TEXT;           -- the chain sent with CertificateSigned
    """,
    # 8: transactions that end: one we closed ourselves (a new StartTransaction on its connector, a
    # charger that rebooted and reports the connector free, the operator) says how and when; the
    # charger's own StopTransaction, when it comes later, replaces our stop (kept in closed_stop).
    # The open transactions of a connector are looked up on every StartTransaction and by the sweep.
    """
    ALTER TABLE transactions ADD COLUMN closed_by TEXT;     -- superseded | closed-after-reboot | closed-by-operator
    ALTER TABLE transactions ADD COLUMN closed_at TEXT;     -- our time of closing
    ALTER TABLE transactions ADD COLUMN closed_stop TEXT;   -- JSON: our stop and cost, replaced by a late stop
    ALTER TABLE transactions ADD COLUMN late_stop_at TEXT;  -- when the charger's own StopTransaction came
    CREATE INDEX transactions_open ON transactions(charger_id, connector_id) WHERE stopped_at IS NULL;
    -- what was odd about a stop for a transaction we never started (e.g. an id beyond 32 bits)
    ALTER TABLE unknown_stops ADD COLUMN flags TEXT NOT NULL DEFAULT '';
    """,
    # 9: why the central system asked a charger to stop a session (stop_on_empty_wallet), kept with
    # the order whatever reason the charger's StopTransaction gives; and the running instance's
    # effective settings, so that the shell (`tariffs list`) shows what it bills, not its own guess
    """
    ALTER TABLE transactions ADD COLUMN stop_note TEXT;    -- e.g. 'wallet empty: cost 4.10 EUR reached ...'
    CREATE TABLE instance (
        id INTEGER PRIMARY KEY CHECK (id = 1),            -- the last instance started on this database
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,                                -- the machine's name: a pid means nothing elsewhere
        started_at TEXT NOT NULL,
        stopped_at TEXT,                                   -- NULL while it runs (or if it crashed: check the pid)
        settings TEXT NOT NULL                             -- JSON, secrets left out
    );
    """,
    # 10: the last time a tag was refused (Authorize or StartTransaction answered other than
    # Accepted), shown on the tag: a driver who "cannot charge" is explained without the message log.
    """
    ALTER TABLE id_tags ADD COLUMN refused_status TEXT;    -- Invalid | Blocked | Expired | ConcurrentTx
    ALTER TABLE id_tags ADD COLUMN refused_reason TEXT;    -- e.g. wallet below minimum
    ALTER TABLE id_tags ADD COLUMN refused_action TEXT;    -- Authorize | StartTransaction
    ALTER TABLE id_tags ADD COLUMN refused_charger TEXT;
    ALTER TABLE id_tags ADD COLUMN refused_at TEXT;        -- our time
    """,
    # 11: load management per charger and per tag: a charger (or its cable) may be weaker than its
    # rating, and fleet vans charge before visitors (load_policy = "priority")
    """
    ALTER TABLE chargers ADD COLUMN max_power_w INTEGER;   -- NULL: the setting charger_max_kw
    ALTER TABLE chargers ADD COLUMN priority INTEGER;      -- NULL: 0; higher is served first
    ALTER TABLE id_tags ADD COLUMN priority INTEGER;       -- NULL: its session takes the charger's
    """,
    # 12: the firmware library: images the central system hosts for UpdateFirmware (files/), each
    # file in files_path/firmware, recorded with what a charger's download must match
    """
    CREATE TABLE firmware (
        name TEXT PRIMARY KEY,                         -- the file name in the library (plain, no path)
        size INTEGER NOT NULL,                         -- bytes
        sha256 TEXT NOT NULL,                          -- hex
        added_at TEXT NOT NULL
    );
    """,
    # 13: a resent MeterValues is recognised by one look-up per timestamp (Store._insert_samples):
    # the ten-column unique index made every meter-value insert cost twice as much (issue 17)
    """
    DROP INDEX meter_values_once;
    """,
    # 14: one row per meterValue element (a reading), its sampled values together as JSON: a
    # MeterValues of four samples wrote four rows into three indexes each (issue 17). The
    # meter_values view gives the old shape, one row per sampled value, for reading; `id` is now
    # the reading's, `position` the sample's place in it. The readings keep the smallest id of
    # the rows they replace, so the order of what was stored does not change.
    """
    CREATE TABLE meter_readings (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        transaction_id INTEGER,                        -- as the charger sent it
        unknown_transaction INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,                          -- MeterValues | StopTransaction
        timestamp TEXT NOT NULL,
        -- [[measurand, phase, unit, context, location, format, value, value_num], ...] in the order
        -- sent: value exactly as sent, value_num the number in the base unit (Wh, W, ...) or null
        samples TEXT NOT NULL,
        power_w REAL,                                  -- its whole-connector Power.Active.Import (the site chart)
        received_at TEXT NOT NULL
    );
    INSERT INTO meter_readings (id, charger_id, connector_id, transaction_id, unknown_transaction, source,
                                timestamp, samples, power_w, received_at)
    SELECT id, charger_id, connector_id, transaction_id, unknown_transaction, source, timestamp, samples, power_w,
           received_at
    FROM (
        SELECT min(id) OVER w AS id, charger_id, connector_id, transaction_id, unknown_transaction, source,
               timestamp, received_at,
               json_group_array(json_array(measurand, phase, unit, context, location, format, value, value_num))
                   OVER w AS samples,
               max(CASE WHEN measurand = 'Power.Active.Import' AND phase IS NULL THEN value_num END) OVER w AS power_w,
               row_number() OVER w AS n
        FROM meter_values
        WINDOW w AS (PARTITION BY charger_id, connector_id, coalesce(transaction_id, -1), unknown_transaction,
                     source, timestamp, received_at ORDER BY id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    )
    WHERE n = 1
    ORDER BY id;
    DROP TABLE meter_values;
    CREATE INDEX meter_readings_tx ON meter_readings(transaction_id) WHERE transaction_id IS NOT NULL;
    CREATE INDEX meter_readings_charger_time ON meter_readings(charger_id, timestamp);
    CREATE INDEX meter_readings_power_time ON meter_readings(timestamp) WHERE power_w IS NOT NULL;
    CREATE VIEW meter_values AS
    SELECT r.id, s.key AS position, r.charger_id, r.connector_id, r.transaction_id, r.unknown_transaction,
           r.source, r.timestamp,
           json_extract(s.value, '$[0]') AS measurand, json_extract(s.value, '$[1]') AS phase,
           json_extract(s.value, '$[2]') AS unit, json_extract(s.value, '$[3]') AS context,
           json_extract(s.value, '$[4]') AS location, json_extract(s.value, '$[5]') AS format,
           json_extract(s.value, '$[6]') AS value, json_extract(s.value, '$[7]') AS value_num,
           r.received_at
    FROM meter_readings AS r, json_each(r.samples) AS s;
    """,
    # 15: the message log's per-charger index keyed by the log's stretch of 4,096 frames first
    # (store/stretches.py, STRETCH_BITS): a group's frames from a thousand chargers land in the newest
    # stretch's few index pages instead of one page per charger, and pruning the oldest frames
    # empties whole stretches. A charger's frames are read newest stretch first (issue 17).
    """
    DROP INDEX message_log_charger;
    CREATE INDEX message_log_bucket ON message_log(id >> 12, charger_id);
    """,
    # 16: the meter readings' indexes keyed so that a group's readings land together (issue 17):
    # by charger within the stretch of 4,096 readings (store/stretches.py) instead of by charger
    # and time or by transaction, whose newest entries each sat on a page of their own; by
    # (timestamp, charger_id), which grows at its end, for the resend check and the site's power
    # chart. A transaction's readings are its charger's within the span of ids they can lie in:
    # from the first id after its start to the newest when it was stopped (null while it runs),
    # moved on by a reading that comes later (store/meter.py).
    """
    ALTER TABLE transactions ADD COLUMN readings_from INTEGER;
    ALTER TABLE transactions ADD COLUMN readings_to INTEGER;
    UPDATE transactions SET readings_from = coalesce(
        (SELECT min(id) FROM meter_readings AS r WHERE r.transaction_id = transactions.id
                                                   AND r.charger_id = transactions.charger_id),
        (SELECT coalesce(max(id), 0) + 1 FROM meter_readings));
    UPDATE transactions SET readings_to = CASE WHEN stopped_at IS NOT NULL THEN coalesce(
        (SELECT max(id) FROM meter_readings AS r WHERE r.transaction_id = transactions.id
                                                   AND r.charger_id = transactions.charger_id),
        readings_from - 1) END;
    DROP INDEX meter_readings_tx;
    DROP INDEX meter_readings_charger_time;
    DROP INDEX meter_readings_power_time;
    CREATE INDEX meter_readings_charger ON meter_readings(id >> 12, charger_id);
    CREATE INDEX meter_readings_time ON meter_readings(timestamp, charger_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
