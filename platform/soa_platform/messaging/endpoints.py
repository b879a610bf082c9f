"""Conversations, messages, threads, reactions, read state and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from soa_platform.dependencies import CurrentUser, PlatformDep, UowDep
from soa_platform.errors import InvalidRequest, NotFound
from soa_platform.identity.models import User
from soa_platform.messaging import repository, service
from soa_platform.messaging.models import Message
from soa_platform.messaging.schemas import (
    ChannelDirectory,
    ConversationCreate,
    ConversationList,
    ConversationOut,
    ConversationSummaryOut,
    Emoji,
    MemberAdd,
    MemberList,
    MessageCreate,
    MessageEdit,
    MessageOut,
    MessagePage,
    ReadMark,
    SearchResults,
)

router = APIRouter(tags=["messaging"], responses={401: {}, 404: {}})

ConversationId = Annotated[int, Path(ge=1, le=2**62)]
MessageIdPath = Annotated[int, Path(ge=1, le=2**62)]
Cursor = Annotated[int | None, Query(ge=0, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=200)]


async def rate_limited_user(user: CurrentUser, platform: PlatformDep) -> User:
    await platform.limiter.hit("write", str(user.id))
    return user


WritingUser = Annotated[User, Depends(rate_limited_user)]


@router.post(
    "/v1/conversations", response_model=ConversationOut, status_code=201, responses={400: {}, 403: {}, 409: {}}
)
async def create_conversation(
    body: ConversationCreate, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> ConversationOut:
    """Create a public or private channel, or open the direct/group conversation of these people."""
    conversation = await service.create_conversation(uow, platform, user, body)
    counts = await repository.member_counts(uow.session, [conversation.id])
    return ConversationOut.model_validate(conversation).model_copy(
        update={"member_count": counts.get(conversation.id, 0)}
    )


@router.get("/v1/conversations", response_model=ConversationList)
async def my_conversations(user: CurrentUser, uow: UowDep) -> ConversationList:
    """The conversations you are a member of, with unread and mention counts."""
    rows = await repository.conversations_of(uow.session, user.id)
    # rows straight from the database: no validation needed (the response is serialised by its model)
    return ConversationList.model_construct(items=[ConversationSummaryOut.model_construct(**row) for row in rows])


@router.get("/v1/channels", response_model=ChannelDirectory, responses={403: {}})
async def browse_channels(user: CurrentUser, uow: UowDep, after: Cursor = None, limit: Limit = 50) -> ChannelDirectory:
    """Public channels anyone (but guests) may join."""
    if user.role.value == "guest":
        return ChannelDirectory(items=[], next_after=None)
    channels = list(await repository.public_channels(uow.session, after_id=after or 0, limit=limit))
    counts = await repository.member_counts(uow.session, [c.id for c in channels])
    items = [
        ConversationOut.model_validate(c).model_copy(update={"member_count": counts.get(c.id, 0)}) for c in channels
    ]
    return ChannelDirectory(items=items, next_after=channels[-1].id if len(channels) == limit else None)


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(conversation_id: ConversationId, user: CurrentUser, uow: UowDep) -> ConversationOut:
    conversation = await service.require_member(uow, user, conversation_id)
    counts = await repository.member_counts(uow.session, [conversation_id])
    return ConversationOut.model_validate(conversation).model_copy(
        update={"member_count": counts.get(conversation_id, 0)}
    )


@router.post("/v1/conversations/{conversation_id}/join", response_model=ConversationOut, responses={403: {}, 409: {}})
async def join(
    conversation_id: ConversationId, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> ConversationOut:
    """Join a public channel (idempotent)."""
    return ConversationOut.model_validate(await service.join(uow, platform, user, conversation_id))


@router.get("/v1/conversations/{conversation_id}/members", response_model=MemberList)
async def members(conversation_id: ConversationId, user: CurrentUser, uow: UowDep) -> MemberList:
    await service.require_member(uow, user, conversation_id)
    return MemberList(user_ids=sorted(await repository.member_ids(uow.session, conversation_id)))


@router.post("/v1/conversations/{conversation_id}/members", status_code=204, responses={400: {}, 403: {}})
async def add_member(
    conversation_id: ConversationId, body: MemberAdd, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Invite someone to a channel (idempotent)."""
    await service.add_member(uow, platform, user, conversation_id, body.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/conversations/{conversation_id}/members/{user_id}", status_code=204, responses={400: {}, 403: {}})
async def remove_member(
    conversation_id: ConversationId,
    user_id: Annotated[int, Path(ge=1, le=2**62)],
    user: WritingUser,
    platform: PlatformDep,
    uow: UowDep,
) -> Response:
    """Leave a channel (your own id) or remove someone (channel owner or admin)."""
    await service.remove_member(uow, platform, user, conversation_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=201,
    responses={
        200: {"description": "a retry: the message stored by the first request"},
        400: {},
        409: {},
        413: {},
        429: {},
    },
)
async def post_message(
    conversation_id: ConversationId,
    body: MessageCreate,
    response: Response,
    user: WritingUser,
    platform: PlatformDep,
    uow: UowDep,
) -> MessageOut:
    """Send a message. Answered only once it is committed; a retry with the same key creates nothing new."""
    message, created = await service.post(
        uow, platform, user, conversation_id, body.body, body.idempotency_key, body.thread_root_id, body.file_ids
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return message


@router.get("/v1/conversations/{conversation_id}/messages", response_model=MessagePage, responses={400: {}})
async def list_messages(
    conversation_id: ConversationId,
    user: CurrentUser,
    uow: UowDep,
    before: Cursor = None,
    after: Cursor = None,
    limit: Limit = 50,
) -> MessagePage:
    """A page of the conversation (thread replies excluded), oldest first. Page back with `before`, forward
    with `after`; with neither, the latest page."""
    return await service.page(uow, user, conversation_id, before=before, after=after, limit=limit)


@router.get("/v1/messages/{message_id}/thread", response_model=MessagePage)
async def thread(
    message_id: MessageIdPath, user: CurrentUser, uow: UowDep, after: Cursor = None, limit: Limit = 100
) -> MessagePage:
    """A thread's replies, oldest first (the first message itself is `GET /v1/messages/{id}`)."""
    root = await _visible_message(uow, user, message_id)
    rows, more = await repository.page(
        uow.session, root.conversation_id, thread_root_id=root.id, before=None, after=after or 0, limit=limit
    )
    return MessagePage(items=await service.render(uow, rows), has_more=more, direction="after")


@router.get("/v1/messages/{message_id}", response_model=MessageOut)
async def get_message(message_id: MessageIdPath, user: CurrentUser, uow: UowDep) -> MessageOut:
    return (await service.render(uow, [await _visible_message(uow, user, message_id)]))[0]


async def _visible_message(uow: UowDep, user: User, message_id: int) -> Message:
    message = await repository.get_message(uow.session, message_id)
    if message is None or await repository.get_membership(uow.session, message.conversation_id, user.id) is None:
        raise NotFound("no such message")
    return message


@router.patch("/v1/messages/{message_id}", response_model=MessageOut, responses={400: {}, 403: {}, 413: {}})
async def edit_message(
    message_id: MessageIdPath, body: MessageEdit, user: WritingUser, platform: PlatformDep, uow: UowDep
) -> MessageOut:
    return await service.edit(uow, platform, user, message_id, body.body)


@router.delete("/v1/messages/{message_id}", status_code=204, responses={403: {}})
async def delete_message(message_id: MessageIdPath, user: WritingUser, platform: PlatformDep, uow: UowDep) -> Response:
    """Delete (soft, audited): the body disappears for everyone; retention removes the row later."""
    await service.delete(uow, platform, user, message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/v1/messages/{message_id}/reactions/{emoji}", status_code=204)
async def add_reaction(
    message_id: MessageIdPath, emoji: Annotated[Emoji, Path()], user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    await service.react(uow, platform, user, message_id, emoji, add=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/v1/messages/{message_id}/reactions/{emoji}", status_code=204)
async def remove_reaction(
    message_id: MessageIdPath, emoji: Annotated[Emoji, Path()], user: WritingUser, platform: PlatformDep, uow: UowDep
) -> Response:
    await service.react(uow, platform, user, message_id, emoji, add=False)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/conversations/{conversation_id}/read", status_code=204, responses={400: {}})
async def mark_read(
    conversation_id: ConversationId, body: ReadMark, user: CurrentUser, platform: PlatformDep, uow: UowDep
) -> Response:
    """Mark the conversation read up to this message (never moves backwards)."""
    await service.mark_read(uow, platform, user, conversation_id, body.message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/search", response_model=SearchResults, responses={400: {}})
async def search(
    user: CurrentUser,
    uow: UowDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    conversation_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    before: Cursor = None,
    limit: Limit = 50,
) -> SearchResults:
    """Full-text search in your conversations, newest first."""
    if not q.strip():
        raise InvalidRequest("q must contain a word")
    rows = await repository.search(uow.session, user.id, q, conversation_id=conversation_id, before=before, limit=limit)
    return SearchResults(items=await service.render(uow, rows), next_before=rows[-1].id if len(rows) == limit else None)
