"""Listeners for check-ins: /partner checkin [setup|schedule|now|pause|resume|skip|questions|history],
/partner away|back, the setup and questions modals, the Answer button and the answer modal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from blocks import checkins as cblocks
from blocks import ids
from blocks.text import escape
from handlers.commands import COMMAND, CommandCall, CommandRouter, Usage
from handlers.common import Reply, echo, guarded, plain_text, under_inputs, view_metadata, view_values
from models.checkin import QUESTIONS_MAX, ParticipantMode
from services.container import Services
from services.errors import Invalid
from services.inputs import ScheduleInput, split_questions, validate, validate_questions

log = logging.getLogger(__name__)

# ScheduleInput field -> the modal input that shows its error.
_SETUP_FIELDS = {
    "weekdays": ids.F_DAYS, "local_time": ids.F_TIME, "timezone": ids.F_TIMEZONE, "questions": ids.F_QUESTIONS,
    "window_minutes": ids.F_WINDOW, "remind_before_close_minutes": ids.F_REMINDER,
    "participant_mode": ids.F_PARTICIPANT_MODE, "participants": ids.F_PARTICIPANTS,
}
_CHECKIN_USAGE = (
    Usage("checkin", "the check-in schedule, the next one in local time, who takes part", f"{COMMAND} checkin"),
    Usage("checkin setup", "set up or change check-ins in a form (owners)", f"{COMMAND} checkin setup"),
    Usage("checkin schedule <days> <HH:MM> [Area/City]", "set the schedule quickly (owners)",
          f"{COMMAND} checkin schedule mon,wed,fri 09:30 Europe/Berlin"),
    Usage("checkin now", "run a check-in right away", f"{COMMAND} checkin now"),
    Usage("checkin pause", "pause scheduled check-ins (owners); `resume` restarts them",
          f"{COMMAND} checkin pause"),
    Usage("checkin skip", "skip the next check-in only (owners)", f"{COMMAND} checkin skip"),
    Usage("checkin questions", "edit the questions in a form; lines starting with `Blocker:` or `Need:` list their "
          "answers in the summary by kind (owners)", f"{COMMAND} checkin questions"),
    Usage("checkin history", "the last check-ins with participation", f"{COMMAND} checkin history"),
)


def parse_setup_view(view: dict[str, Any]) -> ScheduleInput:
    """Read the setup modal into a validated ScheduleInput (raises Invalid with errors per input)."""
    v = view_values(view)

    def selected(block: str) -> str | None:
        option = v.get(block, {}).get("selected_option") or {}
        return option.get("value")

    remind = selected(ids.F_REMINDER) or "half"
    data: dict[str, Any] = {
        "weekdays": [o.get("value") for o in v.get(ids.F_DAYS, {}).get("selected_options") or []],
        "local_time": v.get(ids.F_TIME, {}).get("selected_time") or "",
        "timezone": v.get(ids.F_TIMEZONE, {}).get("value") or "",
        "questions": split_questions(v.get(ids.F_QUESTIONS, {}).get("value")),
        "window_minutes": int(selected(ids.F_WINDOW) or 240),
        "remind_before_close_minutes": None if remind == "half" else int(remind),
        "participant_mode": selected(ids.F_PARTICIPANT_MODE) or ParticipantMode.ALL.value,
        "participants": v.get(ids.F_PARTICIPANTS, {}).get("selected_users") or [],
    }
    try:
        return validate(ScheduleInput, **data)
    except Invalid as exc:
        raise under_inputs(exc, _SETUP_FIELDS) from None


def parse_answers(view: dict[str, Any]) -> list[str]:
    v = view_values(view)
    return [(v.get(cblocks.answer_field(i), {}).get("value") or "") for i in range(QUESTIONS_MAX)
            if cblocks.answer_field(i) in v]


def register(app: App, services: Services, router: CommandRouter) -> None:
    svc = services.checkins

    # -- /partner checkin ... ----------------------------------------------------------------------------
    @router.add("checkin", usage=_CHECKIN_USAGE[0].usage, summary=_CHECKIN_USAGE[0].summary,
                example=_CHECKIN_USAGE[0].example, more=_CHECKIN_USAGE[1:])
    def _checkin(call: CommandCall) -> None:
        action, _, rest = call.args.partition(" ")
        action = action.lower()
        where = {"channel_id": call.channel_id, "actor": call.user_id}
        if action == "":
            o = svc.overview(**where)
            call.reply(f"Check-ins of {escape(o.partnership.name)}", cblocks.overview_blocks(
                o.partnership.name, o.schedule, next_due=o.next_due, participants=o.participants, away=o.away))
        elif action == "setup":
            p, schedule = svc.prepare_setup(**where)
            services.slack.open_view(call.trigger_id, cblocks.setup_modal(
                partnership_id=p.id or 0, partnership_name=p.name, timezone=schedule.timezone if schedule
                else p.timezone, schedule=schedule, response_url=call.response_url))
        elif action == "questions":
            p, questions = svc.prepare_questions(**where)
            services.slack.open_view(call.trigger_id, cblocks.questions_modal(
                partnership_id=p.id or 0, partnership_name=p.name, questions=questions))
        elif action == "history":
            p, rounds = svc.history(**where)
            call.reply(f"Check-in history of {escape(p.name)}", cblocks.history_blocks(p.name, rounds))
        elif action in ("schedule", "now", "pause", "resume", "skip"):
            call.reply.ack()
            if action == "schedule":
                outcome = svc.quick_schedule(args=plain_text(rest), **where)
            elif action == "now":
                outcome = svc.run_now(request_key=call.trigger_id, **where)
            else:
                outcome = {"pause": svc.pause, "resume": svc.resume, "skip": svc.skip_next}[action](**where)
            call.reply(outcome.text())
        else:
            forms = ", ".join(f"`{u.usage}`" for u in _CHECKIN_USAGE)
            raise Invalid(f"`{echo(action, 30)}` is not a check-in command. Use one of: {forms}.")

    @router.add("away", usage="away until <YYYY-MM-DD>", summary="no check-in prompts or reminders for you until "
                "then (inclusive)", example=f"{COMMAND} away until 2026-12-24")
    def _away(call: CommandCall) -> None:
        call.reply(svc.set_away(user_id=call.user_id, until_text=plain_text(call.args)))

    @router.add("back", usage="back", summary="end your away time early", example=f"{COMMAND} back")
    def _back(call: CommandCall) -> None:
        call.reply(svc.back(user_id=call.user_id))

    # -- modals -----------------------------------------------------------------------------------------------
    @app.view(ids.CHECKIN_SETUP_VIEW)
    def _setup_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_DAYS)
        with guarded(reply, "save the check-in schedule"):
            inp = parse_setup_view(view)
            reply.ack()  # closes the form; saving re-checks that the person is an owner
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            reply(svc.save_schedule(partnership_id=partnership_id, actor=reply.user_id, inp=inp).text())

    @app.view(ids.CHECKIN_QUESTIONS_VIEW)
    def _questions_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=ids.F_QUESTIONS)
        with guarded(reply, "change the check-in questions"):
            questions = validate_questions(split_questions(view_values(view).get(ids.F_QUESTIONS, {}).get("value")))
            reply.ack()  # closes the form (nothing written before); saving re-checks that the person is an owner
            partnership_id = int(view_metadata(view).get("partnership_id") or 0)
            reply(svc.save_questions(partnership_id=partnership_id, actor=reply.user_id, questions=questions).text())

    # -- answering --------------------------------------------------------------------------------------------
    @app.action(ids.CHECKIN_ANSWER)
    def _answer_clicked(ack: Callable[..., Any], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        reply = Reply.to_action(services.slack, body)
        with guarded(reply, "open the check-in form"):
            view = svc.answer_form(round_key=str(action.get("value") or ""), user_id=reply.user_id)
            services.slack.open_view(body["trigger_id"], view)

    @app.view(ids.CHECKIN_ANSWER_VIEW)
    def _answer_submitted(ack: Callable[..., Any], body: dict[str, Any], view: dict[str, Any]) -> None:
        reply = Reply.to_form(ack, services.slack, body, field=cblocks.answer_field(0))
        with guarded(reply, "save your check-in answers"):
            round_key = str(view_metadata(view).get("round") or "")
            answers = parse_answers(view)
            svc.check_answer(round_key=round_key, user_id=reply.user_id, answers=answers)
            reply.ack()  # closes the form
            svc.submit_answer(round_key=round_key, user_id=reply.user_id, answers=answers)
