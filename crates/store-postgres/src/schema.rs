//! Diesel table definitions, kept in step with `migrations/` by hand (the
//! `schema_matches_migrations` test checks the columns).

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        nickname -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    concerts (id) {
        id -> Int8,
        title -> Text,
        artist -> Text,
        venue -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    concert_schedules (id) {
        id -> Int8,
        concert_id -> Int8,
        starts_at -> Timestamptz,
        total_seats -> Int4,
        created_at -> Timestamptz,
        sales_open_at -> Nullable<Timestamptz>,
        max_seats_per_buyer -> Int4,
    }
}

diesel::table! {
    buyer_seats (schedule_id, user_id) {
        schedule_id -> Int8,
        user_id -> Int8,
        seats -> Int4,
        max_seats -> Int4,
    }
}

diesel::table! {
    seats (id) {
        id -> Int8,
        schedule_id -> Int8,
        section -> Text,
        row_number -> Int4,
        seat_number -> Int4,
        price -> Int8,
        status -> Text,
        version -> Int8,
    }
}

diesel::table! {
    reservations (id) {
        id -> Int8,
        user_id -> Int8,
        schedule_id -> Int8,
        status -> Text,
        total_amount -> Int8,
        expires_at -> Timestamptz,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    reservation_seats (reservation_id, seat_id) {
        reservation_id -> Int8,
        seat_id -> Int8,
        active -> Bool,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        reservation_id -> Int8,
        user_id -> Int8,
        amount -> Int8,
        status -> Text,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        topic -> Text,
        key -> Text,
        payload -> Jsonb,
        headers -> Jsonb,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    processed_events (consumer, event_id) {
        consumer -> Text,
        event_id -> Text,
        processed_at -> Timestamptz,
    }
}

diesel::table! {
    job_leases (name) {
        name -> Text,
        locked_until -> Timestamptz,
        locked_at -> Timestamptz,
        locked_by -> Text,
    }
}

diesel::joinable!(concert_schedules -> concerts (concert_id));
diesel::joinable!(seats -> concert_schedules (schedule_id));
diesel::joinable!(reservations -> concert_schedules (schedule_id));
diesel::joinable!(reservations -> users (user_id));
diesel::joinable!(reservation_seats -> reservations (reservation_id));
diesel::joinable!(reservation_seats -> seats (seat_id));
diesel::joinable!(payments -> reservations (reservation_id));
diesel::joinable!(buyer_seats -> concert_schedules (schedule_id));
diesel::joinable!(buyer_seats -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    concerts,
    concert_schedules,
    seats,
    reservations,
    reservation_seats,
    payments,
    outbox,
    processed_events,
    job_leases,
    buyer_seats,
);
