"""What the user does with conversations, on the UI thread: open, new, rename, delete, search,
send, stop, regenerate, edit & resend, and the reasoning effort.

The UI thread's HistoryStore writes what the user does (messages, titles, effort) and creates
each answer's row; the engine thread streams the answer into that row (app/engine_worker.py).
A history failure is reported in the banner and leaves the chat usable: the composer keeps the
text that could not be sent.
"""

from __future__ import annotations

import logging
from typing import Literal

from PySide6.QtCore import QObject, Signal, Slot

from app import messages
from app.attachments import SEARCHED_SUFFIX, AttachmentList
from app.chat_instructions import answer_tokens, turn_instructions
from app.chat_view import ChatView
from app.composer import Composer
from app.document_turns import (
    answer_room,
    follow_up_decision,
    stored_decision,
    turn_history,
    turn_prompt,
)
from app.engine_client import EngineClient
from app.engine_requests import Action, ModelInfo, TurnRequest
from app.history import HistoryError, HistoryStore, StoredMessage
from app.history_bridge import new_attachment, reattach
from app.message_widget import describe_attachment
from app.messages import ErrorInfo
from app.settings import SettingsStore
from app.sidebar import Sidebar
from app.turn_stream import TurnResult, TurnUpdate
from engine import (
    AttachedDocument,
    DocumentDecision,
    Message,
    SamplingSettings,
    compose_turn_message,
    decide_document_mode,
)

log = logging.getLogger(__name__)

ModelState = Literal["none", "loading", "ready", "failed"]
NO_MODEL_STATUS = "No model chosen"


class ChatController(QObject):
    busy_changed = Signal(bool)
    effort_changed = Signal(str)
    conversation_changed = Signal(object)  # int | None
    answer_updated = Signal(int)  # message id, after its widget took the update
    turn_completed = Signal(object)  # TurnResult
    setup_requested = Signal()  # the user wants to choose or download a model

    def __init__(
        self,
        *,
        store: HistoryStore,
        engine: EngineClient,
        settings: SettingsStore,
        view: ChatView,
        composer: Composer,
        sidebar: Sidebar,
        attachments: AttachmentList,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store, self.engine, self.settings = store, engine, settings
        self.view, self.composer, self.sidebar, self.attachments = (
            view,
            composer,
            sidebar,
            attachments,
        )
        self.conversation_id: int | None = None
        self.effort = settings.settings.reasoning_effort.value
        self._turn: TurnRequest | None = None
        self._context_used = 0
        # "none" until a load starts: nothing loads until a model is chosen (and setup may be
        # cancelled), so the window must not claim otherwise.
        self.model_state: ModelState = "none"
        engine.turn_progressed.connect(self._progressed)
        engine.turn_finished.connect(self._finished)
        engine.history_failed.connect(self._history_failed)
        engine.model_loaded.connect(self._model_loaded)
        engine.load_failed.connect(self._load_failed)
        engine.load_progressed.connect(self._load_progressed)
        composer.send_requested.connect(self.send)
        composer.stop_requested.connect(self.stop)
        composer.effort_chosen.connect(self.set_effort)
        composer.edit_last_requested.connect(self.edit_last)
        composer.files_dropped.connect(attachments.add_paths)
        composer.setup_requested.connect(self.setup_requested)
        view.edit_requested.connect(self.edit_last)
        view.regenerate_requested.connect(self.regenerate)
        view.version_requested.connect(self.select_version)
        sidebar.conversation_selected.connect(self.open_conversation)
        sidebar.hit_selected.connect(lambda cid, _mid: self.open_conversation(cid))
        sidebar.new_chat_requested.connect(self.new_chat)
        sidebar.rename_requested.connect(self.rename)
        sidebar.search_changed.connect(self.search)
        attachments.changed.connect(self._check_attachments)
        composer.set_effort(self.effort)
        composer.set_status(NO_MODEL_STATUS, offer_setup=True)

    @property
    def busy(self) -> bool:
        return self._turn is not None

    # -- conversations -----------------------------------------------------------------------

    def refresh_sidebar(self) -> None:
        try:
            if self.sidebar.searching():
                # Re-run the search off the UI thread; without a search thread, here.
                if not self.sidebar.refresh_search():
                    self.sidebar.show_hits(self.store.search(self.sidebar.search.text()))
            else:
                self.sidebar.set_conversations(self.store.list_conversations())
        except HistoryError as e:
            messages.error(str(e), details=e.details or None)

    @Slot()
    def new_chat(self) -> None:
        self.composer.end_edit()
        self._show(None, [])
        self.set_effort(self.settings.settings.reasoning_effort.value, save=False)
        self.composer.input.setFocus()

    @Slot(int)
    def open_conversation(self, conversation_id: int) -> None:
        try:
            summary, stored = self.store.get_conversation(conversation_id)
        except (HistoryError, KeyError) as e:
            messages.error(str(e))
            self.refresh_sidebar()
            return
        self.composer.end_edit()
        self._show(conversation_id, stored)
        self.set_effort(summary.reasoning_effort, save=False)

    def _show(self, conversation_id: int | None, stored: list[StoredMessage]) -> None:
        self.conversation_id = conversation_id
        self.view.show_messages(stored)
        self._context_used = _context_used(stored)
        if self._turn is not None and (widget := self.view.assistant(self._turn.message_id)):
            widget.resume()
        self.view.update_controls(busy=self.busy)
        self.sidebar.mark_current(conversation_id)
        self.conversation_changed.emit(conversation_id)

    @Slot(int, str)
    def rename(self, conversation_id: int, title: str) -> None:
        try:
            self.store.rename_conversation(conversation_id, title)
        except HistoryError as e:
            messages.error(str(e), details=e.details or None)
        self.refresh_sidebar()

    def delete_conversation(self, conversation_id: int) -> None:
        if self._turn is not None and self._turn.conversation_id == conversation_id:
            self.engine.cancel()
        try:
            self.store.delete_conversation(conversation_id)
        except HistoryError as e:
            messages.error(str(e), details=e.details or None)
            return
        self.engine.forget_conversation(conversation_id)  # its saved prompt cache goes too
        if conversation_id == self.conversation_id:
            self.new_chat()
        self.refresh_sidebar()

    @Slot(str)
    def search(self, _text: str) -> None:
        self.refresh_sidebar()

    @Slot(str)
    def set_effort(self, effort: str, *, save: bool = True) -> None:
        self.effort = effort
        self.composer.set_effort(effort)
        if save and self.conversation_id is not None:
            try:
                self.store.set_effort(self.conversation_id, effort)
            except HistoryError as e:
                messages.error(str(e), details=e.details or None)
        self.effort_changed.emit(effort)

    # -- turns ---------------------------------------------------------------------------

    @Slot(str)
    def send(self, text: str) -> None:
        if self.busy or not self._ready_to_send():
            return
        docs = self.attachments.ready()
        if not text.strip() and not docs:
            return
        if self.composer.editing:
            self._send_edit(text)
            return
        decision = self._decision()
        if self._refused(decision):
            assert decision is not None and decision.fit is not None
            messages.error(decision.fit.message, topic="fit")
            return
        if decision is None:  # no documents: a follow-up may search earlier ones, or the library
            decision = follow_up_decision(
                self.store,
                self.conversation_id,
                self._context_tokens(),
                text,
                library=self.engine.library_path is not None,
            ) or decide_document_mode((), prompt_tokens=0, context_budget=1)
        composed = compose_turn_message(text, decision)
        searched = decision.mode == "browse"
        try:
            if self.conversation_id is None:
                self.conversation_id = self.store.create_conversation(effort=self.effort)
                self.sidebar.mark_current(self.conversation_id)
            history = self._history(self.store.get_conversation(self.conversation_id)[1])
            new = [new_attachment(a.doc, max(0, a.tokens or 0)) for a in docs if a.doc]
            self.store.add_user_message(self.conversation_id, text, new)
            message_id = self.store.begin_assistant_message(self.conversation_id, self.effort)
        except HistoryError as e:
            messages.error(str(e), details=e.details or None)
            return
        labels = [
            describe_attachment(a.name, a.pages, None if searched else a.token_count)
            + (SEARCHED_SUFFIX if searched else "")
            for a in new
        ]
        self.view.add_user(text, labels)
        self.composer.clear()
        self.attachments.clear()
        self._start("send", composed, history, message_id, decision)

    @Slot()
    def regenerate(self) -> None:
        if self.busy or self.conversation_id is None or not self._ready_to_send():
            return
        try:
            # The answer shown becomes a version of its own; the new one streams into its row.
            message_id = self.store.regenerate_answer(self.conversation_id, self.effort)
            stored = self.store.get_conversation(self.conversation_id)[1]
        except (HistoryError, KeyError, ValueError) as e:
            messages.error(str(e))
            return
        self.view.remove_after_last_user()
        *before, answer = stored  # the model answers the question again, without the answer
        last_user = next((m for m in reversed(before) if m.role == "user"), None)
        documents = self._stored_decision(last_user)
        self._start("regenerate", "", self._history(before), message_id, documents)
        if widget := self.view.assistant(message_id):
            widget.versions.set_versions(answer.version, answer.version_count)

    @Slot(int, int)
    def select_version(self, message_id: int, version: int) -> None:
        """Show another version of an answer; the chat continues from the one shown."""
        widget = self.view.assistant(message_id)
        if self.busy or widget is None:
            return
        try:
            shown = self.store.select_version(message_id, version)
        except HistoryError as e:
            messages.error(str(e), details=e.details or None)
            return
        except (KeyError, ValueError) as e:  # another window regenerated or deleted it
            messages.error(
                f"Version {version} of this answer cannot be shown. Reopen the chat to see "
                "the versions it has now.",
                details=str(e),
            )
            return
        widget.show_version(shown, widget.versions.count)
        if self.view.messages()[-1] is widget:
            self._context_used = _used_tokens(shown.stats)
        self.answer_updated.emit(message_id)

    @Slot()
    def edit_last(self) -> None:
        if self.busy or self.conversation_id is None:
            return
        last = self.view.last_user()
        if last is not None:
            self.composer.begin_edit(last.text)

    def _send_edit(self, text: str) -> None:
        assert self.conversation_id is not None
        extra = [
            new_attachment(a.doc, max(0, a.tokens or 0)) for a in self.attachments.ready() if a.doc
        ]
        try:
            before = self.store.get_conversation(self.conversation_id)[1]
            last_user = max(i for i, m in enumerate(before) if m.role == "user")
            old = list(before[last_user].attachments)
            keep = [reattach(a) for a in old] + extra
            self.store.edit_last_user_message(self.conversation_id, text, keep)
            edited = self.store.get_conversation(self.conversation_id)[1][-1]
            message_id = self.store.begin_assistant_message(self.conversation_id, self.effort)
        except (HistoryError, KeyError, ValueError) as e:
            messages.error(str(e))
            return
        self.view.remove_after_last_user(including_user=True)
        self.view.add_user(
            text, [describe_attachment(a.name, a.pages, a.token_count) for a in keep]
        )
        self.composer.clear()
        self.attachments.clear()
        history = self._history(before[: last_user + 1])
        prompt = turn_prompt(edited, self._context_tokens(), before[:last_user])
        documents = self._stored_decision(edited)
        self._start("edit", prompt, history, message_id, documents)

    def _start(
        self,
        action: Action,
        text: str,
        history: list[Message],
        message_id: int,
        documents: DocumentDecision | None = None,
    ) -> None:
        assert self.conversation_id is not None
        settings = self.settings.settings
        sampling = SamplingSettings(temperature=settings.temperature)
        request = TurnRequest(
            turn_id=self.engine.next_turn_id(),
            conversation_id=self.conversation_id,
            message_id=message_id,
            action=action,
            text=text,
            history=tuple(history),
            effort=self.effort,
            sampling=sampling,
            documents=documents,
            instructions=turn_instructions(self.store, self.conversation_id, settings),
            answer_tokens=answer_tokens(settings),
        )
        widget = self.view.add_assistant(message_id, self.effort)
        widget.begin(show_reasoning_live=True)
        if documents is not None and documents.mode == "browse":
            widget.set_status(documents.note)  # says how this turn reads its documents
        self._turn = request
        self.engine.start_turn(request)
        self.view.update_controls(busy=True)
        self.busy_changed.emit(True)
        self.refresh_sidebar()

    @Slot()
    def stop(self) -> None:
        self.engine.cancel()

    @Slot(object)
    def _progressed(self, update: TurnUpdate) -> None:
        widget = self.view.assistant(update.message_id)
        if widget is not None:
            widget.apply(update)
            self.answer_updated.emit(update.message_id)

    @Slot(object)
    def _finished(self, result: TurnResult) -> None:
        if self._turn is None or result.turn_id != self._turn.turn_id:
            return
        turn, self._turn = self._turn, None
        widget = self.view.assistant(result.message_id)
        if widget is not None:
            collapse = self.settings.settings.collapse_reasoning_when_done
            widget.finish(result, collapse_reasoning=collapse)
            self.answer_updated.emit(result.message_id)
        if result.error is not None:
            messages.show_error(result.error)
        if turn.conversation_id == self.conversation_id and result.stats:
            self._context_used = _used_tokens(result.stats)
        self.view.update_controls(busy=False)
        self.busy_changed.emit(False)
        self.refresh_sidebar()
        self.turn_completed.emit(result)

    # -- model and documents ---------------------------------------------------------------

    def model_loading(self) -> None:
        """A load has started (the window asked the engine)."""
        self.model_state = "loading"
        self.composer.set_status("Loading the model…")
        messages.withdraw("model")

    def _ready_to_send(self) -> bool:
        if self.engine.model is None:
            if self.model_state == "loading":
                messages.info(
                    "The model is still loading; your message stays in the field.", topic="model"
                )
            else:
                messages.info(
                    "No model is set up yet. Set one up to chat; your message stays in the field.",
                    topic="model",
                    action=messages.Action("Set Up Model…", self.setup_requested.emit),
                )
            return False
        if self.attachments.pending():
            messages.info("The attached documents are still being read.")
            return False
        return True

    def _context_tokens(self) -> int:
        model = self.engine.model
        return model.context_tokens if model is not None else 0

    def _history(self, stored: list[StoredMessage]) -> list[Message]:
        return turn_history(stored, self._context_tokens())

    def _stored_decision(self, message: StoredMessage | None) -> DocumentDecision | None:
        if message is None or self.engine.model is None:
            return None
        decision = stored_decision(message, self._context_tokens(), self.store)
        return decision if decision is not None and decision.mode == "browse" else None

    def _decision(self) -> DocumentDecision | None:
        """Whether the ready documents are read whole or searched (None: no model or none)."""
        model, docs = self.engine.model, self.attachments.ready()
        if model is None or not docs:
            return None
        attached = [AttachedDocument(a.doc, max(0, a.tokens or 0)) for a in docs if a.doc]
        budget = model.context_tokens - answer_room(model.context_tokens)
        return decide_document_mode(
            attached, prompt_tokens=self._context_used, context_budget=budget
        )

    def _refused(self, decision: DocumentDecision | None) -> bool:
        """Too long to read whole, and no library to search it in."""
        return (
            decision is not None
            and decision.mode == "browse"
            and decision.fit is not None
            and self.engine.library_path is None
        )

    @Slot()
    def _check_attachments(self) -> None:
        if self.attachments.pending():
            return
        decision = self._decision()
        if self._refused(decision):
            assert decision is not None and decision.fit is not None
            messages.warning(decision.fit.message, topic="fit")
            return
        messages.withdraw("fit")
        self.attachments.set_searchable(decision is not None and decision.mode == "browse")

    @Slot(object)
    def _history_failed(self, problem: ErrorInfo) -> None:
        messages.show_error(problem)

    @Slot(object)
    def _model_loaded(self, info: ModelInfo) -> None:
        self.model_state = "ready"
        self.composer.set_status(f"{info.name} · {info.context_tokens:,}-token context")
        if not info.fits and info.fit_message:
            messages.warning(info.fit_message, topic="memory")  # once per load, not stacked

    @Slot(object)
    def _load_failed(self, problem: ErrorInfo) -> None:
        self.model_state = "failed"
        self.composer.set_status("No model loaded", offer_setup=True)
        messages.show_error(
            problem,
            topic="model",
            action=messages.Action("Choose Another Model…", self.setup_requested.emit),
        )

    @Slot(int, int)
    def _load_progressed(self, done: int, total: int) -> None:
        self.composer.set_status(f"Loading the model… {100 * done // max(total, 1)}%")


def _used_tokens(stats: dict[str, object]) -> int:
    prompt, generated = stats.get("prompt_tokens"), stats.get("generated_tokens")
    return (prompt if isinstance(prompt, int) else 0) + (
        generated if isinstance(generated, int) else 0
    )


def _context_used(stored: list[StoredMessage]) -> int:
    for message in reversed(stored):
        if message.role == "assistant" and message.stats:
            return _used_tokens(message.stats)
    return 0
