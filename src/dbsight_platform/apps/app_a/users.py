"""App A's users: creating one (``python -m dbsight_platform create-user``) and checking a
login. Passwords are hashed with Argon2 (``security.PasswordHashing``); a hash made with
older parameters is replaced at the next successful login."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from ...security import InvalidCredentials, PasswordHashing
from ..shared.crud import audited_create
from .models import User

APP = "app-a"


class UserService:
    def __init__(self, session: AsyncSession, passwords: PasswordHashing) -> None:
        self.session = session
        self.passwords = passwords

    async def create(self, username: str, password: str, roles: list[str]) -> User:
        if any(not role or "," in role for role in roles):
            raise ValueError("a role is a non-empty name without commas")
        user = User(
            username=username,
            password_hash=await asyncio.to_thread(self.passwords.hash, password),
            roles=",".join(sorted(set(roles))),
        )

        async def build() -> User:
            self.session.add(user)
            await self.session.flush()
            return user

        return await audited_create(
            self.session,
            app=APP,
            entity="user",
            build=build,
            fields=["username", "password", "roles"],  # names only, never values
            duplicate=f"A user named {username!r} already exists",
        )

    async def authenticate(self, username: str, password: str) -> User:
        """The active user with this name and password; `InvalidCredentials` otherwise
        (the same answer for an unknown name and a wrong password)."""
        user = (
            await self.session.execute(select(User).where(col(User.username) == username))
        ).scalar_one_or_none()
        if user is None or not user.active:
            await asyncio.to_thread(self.passwords.hash, password)  # as long as a wrong one
            await self.session.rollback()
            raise InvalidCredentials("wrong user name or password")
        # Argon2 takes tens of milliseconds of CPU: off the event loop
        ok, new_hash = await asyncio.to_thread(
            self.passwords.verify_and_update, user.password_hash, password
        )
        if not ok:
            await self.session.rollback()
            raise InvalidCredentials("wrong user name or password")
        if new_hash is not None:
            user.password_hash = new_hash
        await self.session.commit()
        return user
