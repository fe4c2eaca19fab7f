//! The broker as the core's port ([`Clustered`]): a room message or a
//! whisper goes to the publisher, to be numbered by the broker and brought
//! back to every node by its stream; room changes go to the port beneath
//! (the shared store, or memory) and are told to the other nodes once made;
//! news of this node's users is published as it happens.

use std::sync::atomic::Ordering;

use crate::core::cluster::{Change, Event, News};
use crate::core::event::{ChatEvent, DirectEvent, Event as Accepted};
use crate::core::model::key;
use crate::core::port::{Port, Refusal, Taken};

use super::{Link, Publish};

pub struct Clustered {
    link: Link,
    /// Where room changes go: the shared store, or memory.
    inner: Box<dyn Port>,
}

impl Clustered {
    pub fn new(link: Link, inner: Box<dyn Port>) -> Self {
        Clustered { link, inner }
    }

    fn node(&self) -> String {
        self.link.node.to_string()
    }

    /// Hands a message to the publisher, to be numbered by the broker
    /// above the highest id this node has seen; refused while this node
    /// cannot store it (it would be neither acknowledged nor, for its
    /// sender, seen until the store is back) or while the queue is full.
    fn relay<T>(
        &self,
        item: T,
        publish: fn(&Self, T) -> Publish,
        back: fn(T) -> Accepted,
    ) -> Taken {
        if self.link.unstored.load(Ordering::Relaxed) {
            return Taken::Refused(back(item), Refusal::Unavailable);
        }
        match self.link.queue.try_reserve() {
            Ok(permit) => {
                permit.send(publish(self, item));
                Taken::Relayed
            }
            Err(_) => Taken::Refused(back(item), Refusal::Full),
        }
    }

    /// A room message for the broker: its id and time are the broker's.
    fn say(&self, chat: ChatEvent) -> Publish {
        let ChatEvent {
            mut message,
            sender,
            reference,
        } = chat;
        let floor = message.id.saturating_sub(1);
        (message.id, message.ts) = (0, 0);
        Publish::Say {
            room: message.room.as_str().to_string(),
            floor,
            event: Event::Say {
                node: self.node(),
                session: sender,
                reference: reference.clone(),
                message,
            },
            session: sender,
            reference,
        }
    }

    /// A whisper for the broker, to the user keyed by its target's nick.
    fn direct(&self, direct: DirectEvent) -> Publish {
        let DirectEvent {
            mut message,
            sender,
            reference,
            ..
        } = direct;
        let floor = message.id.saturating_sub(1);
        (message.id, message.ts) = (0, 0);
        Publish::Direct {
            target: key(&message.to),
            floor,
            event: Event::Direct {
                node: self.node(),
                session: sender,
                reference: reference.clone(),
                message,
            },
            session: sender,
            reference,
        }
    }
}

impl Port for Clustered {
    fn submit(&self, event: Accepted) -> Taken {
        match event {
            Accepted::Chat(chat) => self.relay(chat, Self::say, Accepted::Chat),
            Accepted::Direct(direct) => self.relay(direct, Self::direct, Accepted::Direct),
            Accepted::Room(_) | Accepted::Amend(_) => self.inner.submit(event),
        }
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    fn node(&self) -> Option<&str> {
        Some(&self.link.node)
    }

    fn remember(
        &self,
        account: &banter_protocol::Nick,
        room: &banter_protocol::RoomName,
        member: bool,
    ) {
        self.inner.remember(account, room, member);
    }

    fn tell(&self, news: News) -> bool {
        let node = self.node();
        let json = |user| serde_json::to_string(user).expect("records serialize");
        self.link.publish(match news {
            News::User { user, change } => Publish::User {
                key: key(&user.nick),
                // A user who quit has no record: its nick is free.
                record: match change {
                    Change::Quit { .. } => None,
                    _ => Some(json(&user)),
                },
                old: None,
                claim: false,
                event: Event::User { user, change },
                reply: None,
            },
            News::Room { room, change } => Publish::Event(Event::Room { node, room, change }),
            News::Kick {
                room,
                nick,
                by,
                reason,
            } => Publish::Event(Event::Kick {
                node,
                room,
                nick,
                by,
                reason,
            }),
            News::Invite { room, nick, by } => Publish::Event(Event::Invite {
                node,
                room,
                nick,
                by,
            }),
            News::Voice {
                room,
                nick,
                by,
                set,
            } => Publish::Event(Event::Voice {
                node,
                room,
                nick,
                by,
                set,
            }),
            News::Account { name } => Publish::Event(Event::Account { node, name }),
            News::Device { account, devices } => Publish::Event(Event::Device {
                node,
                account,
                devices,
            }),
            News::Act { account, act } => Publish::Event(Event::Act { node, account, act }),
            News::Refused {
                to,
                account,
                code,
                message,
            } => Publish::Event(Event::Refused {
                node,
                to,
                account,
                code,
                message,
            }),
            News::End {
                account,
                code,
                message,
            } => Publish::Event(Event::End {
                node,
                account,
                code,
                message,
            }),
            News::Amend(amend) => Publish::Event(Event::Amend { node, amend }),
            News::Typing { place, nick, state } => Publish::Event(Event::Typing {
                node,
                place,
                nick,
                state,
            }),
            News::Read { account, position } => Publish::Event(Event::Read {
                node,
                account,
                position,
            }),
            News::Sync { users } => Publish::Sync {
                records: users
                    .iter()
                    .map(|(k, user)| (k.clone(), json(user)))
                    .collect(),
            },
        })
    }
}
