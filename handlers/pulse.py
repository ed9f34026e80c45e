"""Listeners for pulse surveys: /partner pulse [setup|now|pause|resume], the setup form, the Take the survey
button and the survey form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from blocks import ids
from blocks import pulse as pblocks
from handlers.commands import COMMAND, CommandCall, CommandRouter, Usage
from handlers.common import Reply, echo, guarded, under_inputs, view_metadata, view_values
from models.pulse import PULSE_QUESTIONS_MAX, CadenceKind
from services.container import Services
from services.errors import Invalid
from services.inputs import PulseScheduleInput, split_questions, validate

# PulseScheduleInput field -> the form input that shows its error ("input": the cadence as a whole).
_SETUP_FIELDS = {
    "cadence": ids.F_PULSE_CADENCE, "every_weeks": ids.F_PULSE_EVERY, "nth": ids.F_PULSE_NTH,
    "weekday": ids.F_PULSE_WEEKDAY, "local_time": ids.F_TIME, "timezone": ids.F_TIMEZONE,
    "open_days": ids.F_PULSE_OPEN_DAYS, "anonymous": ids.F_PULSE_ANONYMOUS, "audience": ids.F_PULSE_AUDIENCE,
    "questions": ids.F_QUESTIONS, "input": ids.F_PULSE_OPEN_DAYS,
}
_USAGE = (
    Usage("pulse", "the pulse survey's schedule, the next round in local time, the last results",
          f"{COMMAND} pulse"),
    Usage("pulse setup", "set up or change the recurring partnership-health survey in a form (owners)",
          f"{COMMAND} pulse setup"),
    Usage("pulse now", "run a pulse round right away (owners)", f"{COMMAND} pulse now"),
    Usage("pulse pause", "pause the pulse survey (owners); `resume` restarts it", f"{COMMAND} pulse pause"),
)


def _selected(v: dict[str, dict[str, Any]], block: str) -> str | None:
    return (v.get(block, {}).get("selected_option") or {}).get("value")


def parse_setup_view(view: dict[str, Any]) -> PulseScheduleInput:
    """Read the setup form into a validated PulseScheduleInput (raises Invalid with errors per input)."""
    v = view_values(view)
    cadence = _selected(v, ids.F_PULSE_CADENCE) or CadenceKind.MONTHLY.value
    data: dict[str, Any] = {
        "cadence": cadence,
        # Only the field the chosen cadence uses is checked: a stray value in the other one is no error.
        "every_weeks": v.get(ids.F_PULSE_EVERY, {}).get("value") or "4" if cadence == CadenceKind.WEEKS else 4,
        "nth": int(_selected(v, ids.F_PULSE_NTH) or 1),
        "weekday": _selected(v, ids.F_PULSE_WEEKDAY) or "",
        "local_time": v.get(ids.F_TIME, {}).get("selected_time") or "",
        "timezone": v.get(ids.F_TIMEZONE, {}).get("value") or "",
        "open_days": int(_selected(v, ids.F_PULSE_OPEN_DAYS) or 5),
        "anonymous": (_selected(v, ids.F_PULSE_ANONYMOUS) or "yes") == "yes",
        "audience": _selected(v, ids.F_PULSE_AUDIENCE) or "both",
        "questions": split_questions(v.get(ids.F_QUESTIONS, {}).get("value")),
    }
    try:
        return validate(PulseScheduleInput, **data)
    except Invalid as exc:
        raise under_inputs(exc, _SETUP_FIELDS) from None


def parse_survey(view: dict[str, Any]) -> tuple[list[int | None], list[str]]:
    """The ratings and the open answers of a submitted survey form, by question."""
    v = view_values(view)
    ratings: list[int | None] = []
    answers: list[str] = []
    for i in range(PULSE_QUESTIONS_MAX):
        field = v.get(pblocks.rating_field(i))
        if field is None:
            break
        chosen = (field.get("selected_option") or {}).get("value")
        ratings.append(int(chosen) if chosen and chosen.isdigit() else None)
        answers.append(field.get("value") or "")
    return ratings, answers


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.pulse

    @router.add("pulse", usage=_USAGE[0].usage, summary=_USAGE[0].summary, example=_USAGE[0].example,
                more=_USAGE[1:])
    def _pulse(call: CommandCall) -> None:
        action = call.args.partition(" ")[0].lower()
        where = {"channel_id": call.channel_id, "actor": call.user_id}
        if action == "":
            o = svc.overview(**where)
            call.reply(f"Partnership pulse of {o.partnership.name}", pblocks.overview_blocks(
                o.partnership.name, o.schedule, next_due=o.next_due, last=o.last, current=o.current))
        elif action == "setup":
            p, schedule = svc.prepare_setup(**where)
            services.slack.open_view(call.trigger_id, pblocks.setup_modal(
                partnership_id=p.id or 0, partnership_name=p.name,
                timezone=schedule.timezone if schedule else p.timezone, schedule=schedule,
                response_url=call.response_url))
        elif action in ("now", "pause", "resume"):
            call.reply.ack()
            if action == "now":
                outcome = svc.run_now(request_key=call.trigger_id, **where)
            else:
                outcome = {"pause": svc.pause, "resume": svc.resume}[action](**where)
            call.reply(outcome.text())
        else:
            raise Invalid(f"`{echo(action, 30)}` is not a pulse command. Use `/partner pulse`, `/partner pulse "
                          "setup`, `/partner pulse now`, `/partner pulse pause` or `/partner pulse resume`.")

    @app.view(ids.PULSE_SETUP_VIEW)
    def _setup_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_PULSE_CADENCE)
        with guarded(reply, "save the pulse survey"):
            inp = parse_setup_view(view)
            reply.ack()  # closes the form; saving re-checks that the person is an owner
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            reply(svc.save_schedule(partnership_id=partnership_id, actor=reply.user_id, inp=inp).text())

    @app.action(ids.PULSE_TAKE)
    def _take_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "open the pulse survey"):
            view = svc.survey_form(round_key=str(action.get("value") or ""), user_id=reply.user_id)
            services.slack.open_view(body["trigger_id"], view)

    @app.view(ids.PULSE_SURVEY_VIEW)
    def _survey_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=pblocks.rating_field(0))
        with guarded(reply, "save your pulse answers"):
            round_key = str(view_metadata(view).get("round") or "")
            ratings, answers = parse_survey(view)
            svc.check_answer(round_key=round_key, user_id=reply.user_id, ratings=ratings, answers=answers)
            reply.ack()  # closes the form
            reply(svc.submit_answer(round_key=round_key, user_id=reply.user_id, ratings=ratings,
                                    answers=answers).text())
