use gyre_types::NodeId;

use crate::{Error, Hello, HelloReply, PROTOCOL_VERSION, Result};

impl Hello {
    /// The hello of `node` in `cluster`, speaking this crate's protocol.
    pub fn new(cluster: impl Into<String>, node: NodeId) -> Self {
        Self {
            protocol: PROTOCOL_VERSION,
            cluster: cluster.into(),
            node,
        }
    }

    /// What the receiving node answers, `me` in `cluster`: welcome if the
    /// protocol and cluster match, otherwise a refusal and the error to log.
    ///
    /// # Errors
    /// [`Error::Version`] or [`Error::Cluster`], with the refusal to send.
    pub fn answer(
        &self,
        cluster: &str,
        me: NodeId,
    ) -> std::result::Result<HelloReply, (HelloReply, Error)> {
        let refuse = |e: Error| {
            (
                HelloReply::Refused {
                    reason: e.to_string(),
                },
                e,
            )
        };
        if self.protocol != PROTOCOL_VERSION {
            return Err(refuse(Error::Version {
                ours: PROTOCOL_VERSION,
                theirs: self.protocol,
            }));
        }
        if self.cluster != cluster {
            return Err(refuse(Error::Cluster {
                ours: cluster.to_owned(),
                theirs: self.cluster.clone(),
            }));
        }
        Ok(HelloReply::Welcome {
            protocol: PROTOCOL_VERSION,
            node: me,
        })
    }
}

impl HelloReply {
    /// The connecting side's check of the answer: the node it reached.
    ///
    /// # Errors
    /// [`Error::Refused`] with the peer's reason, or [`Error::Version`] if
    /// it speaks another version.
    pub fn accepted(&self) -> Result<NodeId> {
        match self {
            Self::Welcome { protocol, node } if *protocol == PROTOCOL_VERSION => Ok(*node),
            Self::Welcome { protocol, .. } => Err(Error::Version {
                ours: PROTOCOL_VERSION,
                theirs: *protocol,
            }),
            Self::Refused { reason } => Err(Error::Refused(reason.clone())),
        }
    }
}
