from events.models import Event

URL = "/api/v1/events"


def test_it_stores_the_seed_example(api_client, alice):
    r = api_client.post(
        URL,
        {
            "id": 1,
            "name": "click",
            "trace_id": "03775690",
            "date": "2021-07-04 13:34:56",
            "data": {"clicked_on": "sign up button"},
        },
        format="json",
    )
    assert r.status_code == 201
    assert r.content == b""
    event = Event.objects.get()
    assert event.owner == alice
    assert event.data == {"clicked_on": "sign up button"}
    assert event.date.isoformat() == "2021-07-04T13:34:56+00:00"
